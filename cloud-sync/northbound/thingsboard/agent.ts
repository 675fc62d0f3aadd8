import type { CommandExecutor } from '../../../gateway/core/command.js';
import { LangbiangError } from '../../../gateway/core/errors.js';
import { silentLogger } from '../../log.js';
import type { NorthboundDevice } from '../agent.js';
import { type LinkOptions, NorthboundLink } from '../link.js';
import { ThingsBoardFormat } from './format.js';

export interface ThingsBoardAgentOptions extends LinkOptions {
  devices: NorthboundDevice[];
  /** file holding the gateway device's access token (sync.thingsboard.tokenFile) */
  tokenFile: string;
  /** server-side RPC reaches the command router only when true (default false) */
  acceptRpc?: boolean;
  commands?: CommandExecutor;
}

export class ThingsBoardAgent extends NorthboundLink {
  readonly thingsboard: ThingsBoardFormat;

  constructor(o: ThingsBoardAgentOptions) {
    if (!o.tokenFile)
      throw new LangbiangError('CONFIG_INVALID', 'sync.thingsboard.tokenFile: the access token file is required');
    const format = new ThingsBoardFormat({
      gatewayId: o.gatewayId,
      devices: o.devices,
      tokenFile: o.tokenFile,
      acceptRpc: o.acceptRpc ?? false,
      commands: o.commands,
      now: () => (o.clock ? o.clock.wallNow() : Date.now()),
      log: o.log ?? silentLogger,
    });
    super(o, format);
    this.thingsboard = format;
  }
}
