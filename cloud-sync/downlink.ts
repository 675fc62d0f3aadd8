import type { KeyObject } from 'node:crypto';
import type { CommandExecutor, CommandResult } from '../gateway/core/command.js';
import { describeError } from '../gateway/core/errors.js';
import { type SignedRefusal, verifySigned } from '../gateway/core/signed.js';
import type { SyncLogger } from './log.js';
import {
  COMMAND_VERSION,
  type CommandResultMessage,
  encodeCommandResult,
  MAX_COMMAND_PAYLOAD,
  MAX_DEADLINE_LEAD_MS,
  parseCommand,
  peekCommandId,
} from './protocol/command.js';

/** Commands running at once; beyond this the city gets BUSY instead of a growing queue. */
const MAX_CONCURRENT = 16;

/** The city keys pinned on the gateway (none: every command is refused), and who hears of refusals. */
export interface CommandTrust {
  keys: ReadonlyMap<string, KeyObject>;
  /** a command refused before it was read (the gateway records a `refused` event) */
  onRefused?: (refusal: { id: string | null; reason: SignedRefusal; message: string }) => void;
}

/** Who may send commands to this gateway. */
export interface DownlinkTrust extends CommandTrust {
  gatewayId: string;
}

/**
 * Downlink: a `cmd` message in, exactly one `cmd/result` message out — for a good command the
 * executor's result; for one not signed by a pinned city key (or for another gateway, or expired)
 * UNTRUSTED; for anything else COMMAND_INVALID with the command's id where it could be read.
 * Nothing a broker delivers can throw out of here.
 */
export class Downlink {
  private running = 0;

  constructor(
    private readonly executor: CommandExecutor,
    private readonly publishResult: (payload: Buffer) => void,
    private readonly log: SyncLogger,
    private readonly now: () => number,
    private readonly trust: DownlinkTrust = { gatewayId: '', keys: new Map() },
  ) {}

  handle(payload: Buffer): void {
    try {
      this.dispatch(payload);
    } catch (err) {
      this.log.error({ err: describeError(err) }, 'command handling failed');
    }
  }

  private dispatch(payload: Buffer): void {
    const now = this.now();
    const verified = verifySigned(payload, {
      kind: 'command',
      gateway: this.trust.gatewayId,
      keys: this.trust.keys,
      now,
      maxLifetimeMs: MAX_DEADLINE_LEAD_MS,
      maxBytes: 2 * MAX_COMMAND_PAYLOAD,
    });
    if (!verified.ok) {
      // the id, unverified, only to let the sender match the answer; the command itself is not read
      const id = peekCommandId(payload);
      this.log.warn({ id, reason: verified.reason, problem: verified.message }, 'command refused: not trusted');
      this.send({
        v: COMMAND_VERSION,
        id,
        ok: false,
        code: 'UNTRUSTED',
        message: `refused (${verified.reason}): ${verified.message}`,
        ts: now,
      });
      try {
        this.trust.onRefused?.({ id, reason: verified.reason, message: verified.message });
      } catch (err) {
        this.log.warn({ err: describeError(err) }, 'refused command not recorded');
      }
      return;
    }
    const parsed = parseCommand(JSON.stringify(verified.body.message), { now, actor: verified.key });
    if (!parsed.ok) {
      this.log.warn({ id: parsed.id, problem: parsed.message }, 'malformed command refused');
      this.send({
        v: COMMAND_VERSION,
        id: parsed.id,
        ok: false,
        code: 'COMMAND_INVALID',
        message: parsed.message,
        ts: this.now(),
      });
      return;
    }
    const req = parsed.request;
    if (this.running >= MAX_CONCURRENT) {
      this.send({
        v: COMMAND_VERSION,
        id: req.id,
        ok: false,
        code: 'BUSY',
        message: 'too many commands running; retry later',
        ts: this.now(),
      });
      return;
    }
    this.running++;
    this.log.info({ id: req.id, device: req.device, point: req.point }, 'command received');
    let done: Promise<CommandResult>;
    try {
      done = Promise.resolve(this.executor.execute(req));
    } catch (err) {
      done = Promise.reject(err);
    }
    done
      .then(
        (res) => ({ ...res, v: COMMAND_VERSION, id: req.id }) as CommandResultMessage,
        (err) =>
          ({
            v: COMMAND_VERSION,
            id: req.id,
            ok: false,
            code: 'DEVICE_ERROR',
            message: describeError(err),
            ts: this.now(),
          }) as CommandResultMessage,
      )
      .then((msg) => {
        this.running--;
        this.send(msg);
      })
      .catch((err) => this.log.error({ err: describeError(err) }, 'command result not sent'));
  }

  private send(msg: CommandResultMessage): void {
    // v first, then the result fields in a stable order for people reading broker logs
    const { v, id, ok, code, message, readBack, ts, duplicate } = msg;
    const out: CommandResultMessage = { v, id, ok, ts };
    if (code !== undefined) out.code = code;
    if (message !== undefined) out.message = message;
    if (readBack !== undefined) out.readBack = readBack;
    if (duplicate !== undefined) out.duplicate = duplicate;
    this.publishResult(encodeCommandResult(out));
  }
}
