import type { CommandExecutor } from '../../../gateway/core/command.js';
import { describeError, LangbiangError } from '../../../gateway/core/errors.js';
import { silentLogger } from '../../log.js';
import type { NorthboundDevice } from '../agent.js';
import { type LinkOptions, NorthboundLink } from '../link.js';
import { type BdSeqStore, SparkplugFormat } from './format.js';

export interface SparkplugAgentOptions extends LinkOptions {
  /** Sparkplug group id (sync.sparkplug.groupId); the edge node id is the gateway id */
  groupId: string;
  devices: NorthboundDevice[];
  /** DCMD writes reach the command router only when true (default false) */
  acceptCommands?: boolean;
  commands?: CommandExecutor;
  /** makes cursor moves durable now (the store's flush): the bdSeq must be on disk before its will */
  persist?: () => void;
}

/** The outbox cursor that keeps the next bdSeq across restarts. */
export const BDSEQ_CURSOR = 'sparkplug-bdseq';

/** Sparkplug B ids may not hold the MQTT separators and wildcards. */
const SPARKPLUG_ID = /^[^/+#]+$/;

export class SparkplugAgent extends NorthboundLink {
  readonly sparkplug: SparkplugFormat;

  constructor(o: SparkplugAgentOptions) {
    if (!o.groupId || !SPARKPLUG_ID.test(o.groupId))
      throw new LangbiangError('CONFIG_INVALID', 'sync.sparkplug.groupId: a group id without /, + or # is required');
    const log = o.log ?? silentLogger;
    const bdSeq: BdSeqStore = {
      next: () => o.outbox.getCursor(BDSEQ_CURSOR),
      used: (v) => {
        o.outbox.setCursor(BDSEQ_CURSOR, (v + 1) % 256);
        try {
          o.persist?.();
        } catch (err) {
          log.warn({ err: describeError(err) }, 'bdSeq not written to disk yet');
        }
      },
    };
    const format = new SparkplugFormat({
      groupId: o.groupId,
      edgeNodeId: o.gatewayId,
      devices: o.devices,
      bdSeq,
      acceptCommands: o.acceptCommands ?? false,
      commands: o.commands,
      now: () => (o.clock ? o.clock.wallNow() : Date.now()),
      log,
    });
    super(o, format);
    this.sparkplug = format;
  }
}
