import { createHash } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import {
  type CommandExecutor,
  type CommandRequest,
  type CommandResult,
  type CommandResultCode,
  type CommandSource,
  isCommandResultCode,
} from '../core/command.js';
import type { BusDriver, DeviceBinding } from '../core/driver.js';
import { describeError, isLangbiangError, LangbiangError } from '../core/errors.js';
import type { EventRecorder } from '../core/outbox.js';
import type { PointDef } from '../core/point.js';
import type { Reading } from '../core/reading.js';
import { DeviceLanes } from './lanes.js';
import { validateWrite } from './validate-write.js';

/** A configured device as the router needs it. */
export interface RouterDevice {
  binding: DeviceBinding;
  /** undefined when the bus did not start: commands get DEVICE_ERROR, not a hang */
  bus: BusDriver | undefined;
  busId: string;
  enabled: boolean;
}

/**
 * Something addressed like a device that is not one on a bus: a streetlight cabinet takes
 * `schedule` and `override` commands. It validates its own points and values (throwing
 * LangbiangErrors with command codes) and acts, usually by sending device commands back through
 * the router.
 */
export interface CommandTarget {
  execute(req: CommandRequest): Promise<{ readBack?: CommandResult['readBack']; message?: string }>;
}

/** Where results are remembered by id (the store's ControlTables). */
export interface StoredCommandResult {
  result: CommandResult;
  fingerprint?: string;
}

/** Durable memory of results, by `source:id` (the store's control tables). */
export interface CommandLedger {
  commandResult(key: string): StoredCommandResult | undefined;
  recordCommandResult(key: string, entry: StoredCommandResult, keepMs: number): void;
}

export interface CommandRouterOptions {
  clock: Clock;
  devices: ReadonlyMap<string, RouterDevice>;
  /** durable memory of results by id; without it, idempotency lasts only as long as the process */
  ledger?: CommandLedger;
  /** every command's audit record goes here as a 'command' event (synced to the city) */
  audit?: EventRecorder;
  /** a good read-back becomes a reading, so the panel shows the new state without waiting for a poll */
  onReadBack?: (reading: Reading) => void;
  /** failures of the audit or ledger: the command's result stands, the problem is logged */
  onError?: (what: string, err: unknown) => void;
  /** longest a command may take from arrival to result (default 10 s) */
  timeoutMs?: number;
  /** commands waiting for one device beyond this are refused BUSY (default 16) */
  maxQueuePerDevice?: number;
  /** how long a result is remembered for duplicate delivery (default 7 days) */
  keepResultsMs?: number;
}

const SOURCES: readonly CommandSource[] = ['mqtt', 'http', 'cli', 'flows', 'schedule'];
const MAX_ID_LENGTH = 128;
/** audit records carry the command, but not a megabyte of it */
const MAX_AUDIT_VALUE_CHARS = 2000;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_QUEUE = 16;
const DEFAULT_KEEP_MS = 7 * 24 * 3_600_000;

/** What a command asks, for telling a redelivery (same) from a reused id (different). */
function fingerprintOf(req: CommandRequest): string {
  return createHash('sha256')
    .update(JSON.stringify([req.device, req.point, req.value]))
    .digest('base64url');
}

class Refused extends Error {
  constructor(
    readonly code: CommandResultCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The one path for commands (DESIGN.md "Commands"): the city over MQTT, the panel and console
 * over HTTP, the CLI, Node-RED and the cabinet schedules all call execute(). It checks the
 * request against the config and the device profile, refuses late commands, runs the write on
 * the device's bus queue (one command per device at a time, write and read-back together), and
 * answers every request with a result — never a throw. Each id runs once: a redelivered command
 * gets the stored first result, marked duplicate.
 */
export class CommandRouter implements CommandExecutor {
  private readonly targets = new Map<string, CommandTarget>();
  /** by `source:id`, with the fingerprint of what the command asked */
  private readonly inFlight = new Map<string, { fingerprint: string; done: Promise<CommandResult> }>();
  /** results kept in memory when there is no ledger (tests, one-shot CLI) */
  private readonly memory = new Map<string, StoredCommandResult>();
  private readonly lanes: DeviceLanes;
  private readonly timeoutMs: number;
  private readonly keepMs: number;

  constructor(private readonly opts: CommandRouterOptions) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.keepMs = opts.keepResultsMs ?? DEFAULT_KEEP_MS;
    this.lanes = new DeviceLanes(opts.maxQueuePerDevice ?? DEFAULT_MAX_QUEUE);
  }

  /** Registers a virtual device (a cabinet). Its id must not be a device id. */
  addTarget(id: string, target: CommandTarget): void {
    if (this.opts.devices.has(id) || this.targets.has(id)) {
      throw new LangbiangError('CONFIG_INVALID', `"${id}" is already a device or command target`);
    }
    this.targets.set(id, target);
  }

  /** Device and target ids commands can address. */
  ids(): string[] {
    return [...this.opts.devices.keys(), ...this.targets.keys()];
  }

  async execute(req: CommandRequest): Promise<CommandResult> {
    const received = this.opts.clock.wallNow();
    const shape = checkShape(req);
    if (shape) {
      // Without a usable id there is nothing to deduplicate on: answer, audit, forget.
      const result = this.result(typeof req?.id === 'string' ? req.id.slice(0, MAX_ID_LENGTH) : '', shape);
      this.auditRecord(req, result, received);
      return result;
    }
    // ids are scoped by source: a panel command cannot take the id of the city's next one
    const key = `${req.source}:${req.id}`;
    const fingerprint = fingerprintOf(req);
    const running = this.inFlight.get(key);
    if (running) {
      if (running.fingerprint !== fingerprint) return this.conflict(req, received);
      return this.duplicate(req, await running.done, received);
    }
    const stored = this.lookup(key);
    if (stored) {
      // no fingerprint: a result stored by an older release, before content was compared
      if (stored.fingerprint !== undefined && stored.fingerprint !== fingerprint) return this.conflict(req, received);
      return this.duplicate(req, stored.result, received);
    }

    const work = this.run(req).then((result) => {
      this.remember(key, { result, fingerprint });
      this.auditRecord(req, result, received);
      return result;
    });
    this.inFlight.set(key, { fingerprint, done: work });
    try {
      return await work;
    } finally {
      this.inFlight.delete(key);
    }
  }

  /** The same id from the same source, asking something else: refused, and the first result stands. */
  private conflict(req: CommandRequest, received: number): CommandResult {
    const result = this.result(
      req.id,
      new Refused('CONFLICT', `command id ${req.id} was already used for a different command; use a new id`),
    );
    this.auditRecord(req, result, received);
    return result;
  }

  private async run(req: CommandRequest): Promise<CommandResult> {
    try {
      this.checkDeadline(req);
      const target = this.targets.get(req.device);
      if (target) {
        const out = await this.inLane(req.device, () => {
          this.checkDeadline(req);
          return target.execute(req);
        });
        return { ...this.result(req.id, null), ...out };
      }
      const dev = this.opts.devices.get(req.device);
      if (!dev) {
        throw new Refused('UNKNOWN_DEVICE', `no device "${req.device}" in this gateway's config`);
      }
      if (!dev.enabled) throw new Refused('COMMAND_INVALID', `device "${req.device}" is disabled in the config`);
      const { point, value } = validateWrite(dev.binding.profile, req.point, req.value);
      const bus = dev.bus;
      if (!bus) throw new Refused('DEVICE_ERROR', `bus ${dev.busId} of device "${req.device}" is not running`);
      return await this.inLane(req.device, async () => {
        this.checkDeadline(req);
        await bus.writePoint(dev.binding, point, value);
        return this.readBack(req, dev, bus, point, value);
      });
    } catch (err) {
      return this.result(req.id, toRefusal(err));
    }
  }

  /** One command per device at a time, with a deadline on the whole of it. */
  private async inLane<T>(device: string, fn: () => Promise<T>): Promise<T> {
    const done = this.lanes.run(device, fn);
    if (!done) throw new Refused('BUSY', `device "${device}" has too many commands waiting; try again shortly`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Refused('DEVICE_ERROR', `no result from "${device}" within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    try {
      return await Promise.race([done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async readBack(
    req: CommandRequest,
    dev: RouterDevice,
    bus: BusDriver,
    point: PointDef,
    written: number | boolean,
  ): Promise<CommandResult> {
    // Some registers are write-only or answer with something else; a failed read-back does not
    // undo a write the device acknowledged.
    const [v] = await bus.readPoints(dev.binding, [point]).catch(() => []);
    const result = this.result(req.id, null);
    if (v?.quality !== 'good') {
      result.readBack = null;
      result.message = `written; read-back ${v ? `failed (${v.quality})` : 'not possible'}`;
      return result;
    }
    result.readBack = v.value;
    const want = typeof written === 'boolean' ? (written ? 1 : 0) : written;
    if (typeof v.value === 'number' && Math.abs(v.value - want) > Math.abs(point.scale) / 2 + 1e-9) {
      result.message = `written ${want}, device reads back ${v.value}`;
    }
    const clock = this.opts.clock;
    try {
      this.opts.onReadBack?.({
        device: dev.binding.id,
        point: point.name,
        value: v.value,
        quality: 'good',
        ts: clock.wallNow(),
        mono: clock.monoNow(),
        bootId: clock.bootId,
        synced: clock.isSynced(),
        ...(point.unit ? { unit: point.unit } : {}),
      });
    } catch (err) {
      this.opts.onError?.('read-back reading', err);
    }
    return result;
  }

  private checkDeadline(req: CommandRequest): void {
    if (req.deadline !== undefined && this.opts.clock.wallNow() > req.deadline) {
      const late = this.opts.clock.wallNow() - req.deadline;
      throw new Refused('EXPIRED', `command ${req.id} expired ${Math.round(late / 1000)} s before it could run`);
    }
  }

  private lookup(key: string): StoredCommandResult | undefined {
    const mem = this.memory.get(key);
    if (mem) return mem;
    if (!this.opts.ledger) return undefined;
    try {
      return this.opts.ledger.commandResult(key);
    } catch (err) {
      this.opts.onError?.('command ledger read', err);
      return undefined;
    }
  }

  private remember(key: string, entry: StoredCommandResult): void {
    if (this.opts.ledger) {
      try {
        this.opts.ledger.recordCommandResult(key, entry, this.keepMs);
        return;
      } catch (err) {
        this.opts.onError?.('command ledger write', err);
      }
    }
    this.memory.set(key, entry);
    if (this.memory.size > 10_000) this.memory.delete(this.memory.keys().next().value as string);
  }

  private duplicate(req: CommandRequest, first: CommandResult, received: number): CommandResult {
    const result: CommandResult = { ...first, duplicate: true };
    this.auditRecord(req, result, received);
    return result;
  }

  private result(id: string, refusal: Refused | null): CommandResult {
    const ts = this.opts.clock.wallNow();
    if (!refusal) return { id, ok: true, ts };
    return { id, ok: false, code: refusal.code, message: refusal.message, ts };
  }

  private auditRecord(req: CommandRequest, result: CommandResult, received: number): void {
    if (!this.opts.audit) return;
    const r = (req ?? {}) as Partial<CommandRequest>;
    try {
      this.opts.audit.recordEvent('command', {
        id: result.id,
        source: typeof r.source === 'string' ? r.source.slice(0, 32) : null,
        actor: typeof r.actor === 'string' ? r.actor.slice(0, 128) : null,
        receivedAt: received,
        device: typeof r.device === 'string' ? r.device.slice(0, 128) : null,
        point: typeof r.point === 'string' ? r.point.slice(0, 128) : null,
        value: auditValue(r.value),
        ...(typeof r.deadline === 'number' ? { deadline: r.deadline } : {}),
        result: {
          ok: result.ok,
          ...(result.code ? { code: result.code } : {}),
          ...(result.message ? { message: result.message } : {}),
          ...(result.readBack !== undefined ? { readBack: result.readBack } : {}),
          ...(result.duplicate ? { duplicate: true } : {}),
          ts: result.ts,
        },
      });
    } catch (err) {
      this.opts.onError?.('command audit', err);
    }
  }
}

function checkShape(req: CommandRequest): Refused | null {
  if (typeof req !== 'object' || req === null) return new Refused('COMMAND_INVALID', 'a command must be an object');
  if (typeof req.id !== 'string' || req.id.length === 0 || req.id.length > MAX_ID_LENGTH) {
    return new Refused('COMMAND_INVALID', `command id must be a string of 1-${MAX_ID_LENGTH} characters`);
  }
  if (!SOURCES.includes(req.source)) {
    return new Refused('COMMAND_INVALID', `command source must be one of ${SOURCES.join(', ')}`);
  }
  if (typeof req.device !== 'string' || req.device.length === 0 || req.device.length > MAX_ID_LENGTH) {
    return new Refused('COMMAND_INVALID', `command device must be a string of 1-${MAX_ID_LENGTH} characters`);
  }
  if (typeof req.point !== 'string' || req.point.length === 0 || req.point.length > MAX_ID_LENGTH) {
    return new Refused('COMMAND_INVALID', `command point must be a string of 1-${MAX_ID_LENGTH} characters`);
  }
  if (req.deadline !== undefined && (typeof req.deadline !== 'number' || !Number.isFinite(req.deadline))) {
    return new Refused('COMMAND_INVALID', 'command deadline must be a time in ms since the epoch');
  }
  return null;
}

function toRefusal(err: unknown): Refused {
  if (err instanceof Refused) return err;
  if (isLangbiangError(err) && isCommandResultCode(err.code)) return new Refused(err.code, err.message);
  // transport trouble (timeouts, exceptions, a closed port, a backed-off device)
  return new Refused('DEVICE_ERROR', describeError(err));
}

function auditValue(v: unknown): unknown {
  if (v === undefined) return null;
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  if (text === undefined) return null;
  if (text.length <= MAX_AUDIT_VALUE_CHARS) return v;
  return `${text.slice(0, MAX_AUDIT_VALUE_CHARS)}… (${text.length} characters)`;
}
