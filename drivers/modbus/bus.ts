import type { BusDriver, BusHealth, DeviceBinding } from '../../gateway/core/driver.js';
import { describeError, LangbiangError, ModbusExceptionError } from '../../gateway/core/errors.js';
import { type PointDef, pointWidth, type RegisterFunction } from '../../gateway/core/point.js';
import type { PointValue, Quality } from '../../gateway/core/reading.js';
import { decodePoint, encodePoint, inPointRange, isRegisterBitField } from './codec.js';
import { qualityForError, reasonForError, toModbusError } from './errors.js';
import { type BackoffPolicy, DEFAULT_BACKOFF, DeviceHealthTracker, type PollOutcome } from './health.js';
import { type PlanOptions, planReads, type ReadBlock, sliceForPoint } from './planner.js';
import { rtuInterFrameDelayMs } from './queue.js';
import { type ModbusClient, ModbusTransport, type TransportTarget } from './transport.js';

export interface ModbusRtuOptions {
  id: string;
  path: string;
  baudRate: number;
  parity: 'none' | 'even' | 'odd';
  stopBits: 1 | 2;
  dataBits: 7 | 8;
  timeoutMs: number;
  /** silence between transactions; default 3.5 character times at the baud rate */
  interFrameDelayMs?: number;
  /** extra tries of a request that got no usable answer (see ModbusBus); default 0 */
  retries?: number;
}

export interface ModbusTcpOptions {
  id: string;
  host: string;
  port: number;
  timeoutMs: number;
  /** default 0: TCP frames need no gap, but slow serial gateways behind TCP may want one */
  interFrameDelayMs?: number;
  /** extra tries of a request that got no usable answer (see ModbusBus); default 0 */
  retries?: number;
}

export interface ModbusBusDeps {
  /** wall clock in ms, for backoff and health timestamps */
  clock?: () => number;
  backoff?: Partial<BackoffPolicy>;
  /** first reopen delay after the port/socket is lost (doubles, capped by reconnectMaxMs) */
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  onStateChange?: (state: { bus: string; open: boolean; error?: string }) => void;
}

const DEFAULT_TIMEOUT_MS = 1000;

/**
 * A Modbus RTU or TCP bus as the gateway sees it: read the due points of a device (planned into
 * the fewest block reads), write a point, report health. One queue per bus; per-device backoff;
 * device trouble always comes back as reading qualities, never as a rejection.
 */
export class ModbusBus implements BusDriver {
  readonly id: string;
  readonly type: 'modbus-rtu' | 'modbus-tcp';
  private readonly transport: ModbusTransport;
  private readonly healthTracker: DeviceHealthTracker;
  private readonly now: () => number;
  /** extra tries of a request that got no usable answer (timeout, garbled frame) */
  private readonly retries: number;
  /** requests sent again after no usable answer, since the bus was made */
  private retried = 0;
  /** per device: the points its unit refused (exception 2), for the profile and unit they were learnt with */
  private readonly refused = new Map<string, RefusedPoints>();

  static rtu(o: ModbusRtuOptions, deps: ModbusBusDeps = {}): ModbusBus {
    const target: TransportTarget = {
      kind: 'rtu',
      serial: { path: o.path, baudRate: o.baudRate, parity: o.parity, stopBits: o.stopBits, dataBits: o.dataBits },
    };
    const gap = o.interFrameDelayMs ?? rtuInterFrameDelayMs(o);
    return new ModbusBus(o.id, 'modbus-rtu', target, o.timeoutMs, gap, o.retries ?? 0, deps);
  }

  static tcp(o: ModbusTcpOptions, deps: ModbusBusDeps = {}): ModbusBus {
    return new ModbusBus(
      o.id,
      'modbus-tcp',
      { kind: 'tcp', host: o.host, port: o.port },
      o.timeoutMs,
      o.interFrameDelayMs ?? 0,
      o.retries ?? 0,
      deps,
    );
  }

  private constructor(
    id: string,
    type: 'modbus-rtu' | 'modbus-tcp',
    target: TransportTarget,
    timeoutMs: number,
    interFrameDelayMs: number,
    retries: number,
    deps: ModbusBusDeps,
  ) {
    this.id = id;
    this.retries = Number.isInteger(retries) && retries > 0 ? Math.min(retries, MAX_RETRIES) : 0;
    this.type = type;
    this.now = deps.clock ?? Date.now;
    this.healthTracker = new DeviceHealthTracker({ ...DEFAULT_BACKOFF, ...deps.backoff }, this.now);
    // A missing timeout would let one silent unit hold the bus forever.
    const timeout = Number.isFinite(timeoutMs) && timeoutMs > 0 ? timeoutMs : DEFAULT_TIMEOUT_MS;
    this.transport = new ModbusTransport({
      id,
      target,
      timeoutMs: timeout,
      interFrameDelayMs,
      reconnectBaseMs: deps.reconnectBaseMs,
      reconnectMaxMs: deps.reconnectMaxMs,
      onStateChange: deps.onStateChange ? (s) => deps.onStateChange?.({ bus: id, ...s }) : undefined,
    });
  }

  get isOpen(): boolean {
    return this.transport.open;
  }

  open(): Promise<void> {
    return this.transport.start();
  }

  close(): Promise<void> {
    return this.transport.stop();
  }

  async readPoints(device: DeviceBinding, points: readonly PointDef[]): Promise<PointValue[]> {
    if (points.length === 0) return [];
    const all = (quality: Quality, error: string): PointValue[] =>
      points.map((p) => ({ point: p.name, value: null, quality, error }));

    const unit = device.unit;
    if (unit === undefined || !Number.isInteger(unit) || unit < 0 || unit > 255) {
      return all('bus_error', `device ${device.id} has no valid Modbus unit id`);
    }
    if (!this.transport.open) {
      return all(
        'bus_error',
        `bus ${this.id} is not open${this.transport.lastError ? `: ${this.transport.lastError}` : ''}`,
      );
    }
    const retryAt = this.healthTracker.backedOffUntil(device.id);
    if (retryAt !== undefined) {
      return all('device_offline', `not answering; next try at ${new Date(retryAt).toISOString()}`);
    }

    const refused = this.refusedFor(device);
    const unsupported = (p: PointDef): PointValue => ({
      point: p.name,
      value: null,
      quality: 'unsupported',
      error: REFUSED_REASON,
    });
    const asked = points.filter((p) => !refused.names.has(p.name));
    // Every due point refused: nothing to ask the unit, and nothing new about its health.
    if (asked.length === 0) return points.map(unsupported);

    let blocks: ReadBlock[];
    const plan: PlanOptions = { maxRegisters: device.profile.maxReadRegisters };
    try {
      blocks = planReads(asked, { ...plan, refused: (fn, a) => refused.addresses.has(addressKey(fn, a)) });
    } catch (err) {
      return all('decode_error', describeError(err));
    }

    const poll: PollState = {
      unit,
      plan,
      byName: new Map(),
      refusedNow: [],
      answered: false,
      exceptions: false,
      noAnswer: false,
      priority: this.healthTracker.isSuspect(device.id) ? 'low' : 'normal',
      // A unit that failed its last polls is probably gone, not unlucky: one timeout per try is enough.
      retries: this.healthTracker.get(device.id).consecutiveFailures >= RETRY_AFTER_FAILED_POLLS ? 0 : this.retries,
    };
    for (const block of blocks) await this.readBlockInto(block, poll);

    if (poll.refusedNow.length > 0) this.remember(device, refused, poll.refusedNow, points);

    let outcome: PollOutcome | undefined;
    if (poll.answered) outcome = 'ok';
    else if (poll.exceptions) outcome = 'answered_with_exception';
    else if (poll.noAnswer) outcome = 'no_answer';
    // Bus loss says nothing about the device: its health stays as it was.
    if (outcome) this.healthTracker.record(device.id, outcome, poll.lastError);

    return points.map((p) => {
      if (refused.names.has(p.name)) return unsupported(p);
      return poll.byName.get(p.name) ?? { point: p.name, value: null, quality: 'decode_error', error: 'not planned' };
    });
  }

  /**
   * Reads one block into the poll's results. On "illegal data address" the unit answered but
   * refuses some register of the block: the block is split in two (each half planned again) until
   * the refused points stand alone, so the points it does serve still come back this poll.
   */
  private async readBlockInto(block: ReadBlock, poll: PollState): Promise<void> {
    if (poll.skipRest) {
      for (const p of block.points) poll.byName.set(p.name, { point: p.name, value: null, ...poll.skipRest });
      return;
    }
    const label = `${this.id} unit ${poll.unit} ${block.function} ${block.address}+${block.count}`;
    try {
      const data = await this.requestWithRetries(poll.unit, label, (c) => readBlock(c, block), {
        priority: poll.priority,
        retries: poll.retries,
      });
      poll.answered = true;
      for (const p of block.points) poll.byName.set(p.name, decodeOne(block, data, p));
      return;
    } catch (err) {
      const e = toModbusError(err, label);
      if (e instanceof ModbusExceptionError && e.exceptionCode === ILLEGAL_DATA_ADDRESS) {
        poll.exceptions = true;
        if (block.points.length === 1) {
          poll.refusedNow.push(block.points[0] as PointDef);
          return;
        }
        const sorted = [...block.points].sort((a, b) => a.address - b.address || pointWidth(a) - pointWidth(b));
        const half = Math.ceil(sorted.length / 2);
        for (const part of [sorted.slice(0, half), sorted.slice(half)]) {
          for (const b of planReads(part, poll.plan)) await this.readBlockInto(b, poll);
        }
        return;
      }
      const quality = qualityForError(e);
      const error = reasonForError(e);
      poll.lastError = error;
      for (const p of block.points) poll.byName.set(p.name, { point: p.name, value: null, quality, error });
      if (quality === 'exception') poll.exceptions = true;
      else if (quality === 'timeout' || quality === 'crc_error') {
        poll.noAnswer = true;
        // Unlucky twice over on a noisy line, or gone: the rest of this poll gets no retries.
        poll.retries = 0;
      }
      // A unit that did not answer one block (with its retries) will not answer the next: don't
      // spend a timeout per block — unless it answered earlier in this poll, where one more timeout
      // is line noise, not a dead unit. A closed bus fails everything after it anyway.
      if ((quality === 'timeout' && (!poll.answered || poll.timedOutOnce)) || quality === 'bus_error') {
        poll.skipRest = { quality, error };
      }
      if (quality === 'timeout') poll.timedOutOnce = true;
    }
  }

  /**
   * One transaction, sent again up to `retries` times when no usable answer came back (timeout,
   * CRC error, malformed frame): on a long RS-485 run a lost reply is noise, and asking again
   * costs one timeout where giving up costs the whole block for a poll interval. Exceptions and
   * bus loss are answers of a kind and are never retried. Only for requests that are safe to
   * repeat: reads, and writes that set a state (see writePoint).
   */
  private async requestWithRetries<T>(
    unit: number,
    label: string,
    op: (c: ModbusClient) => Promise<T>,
    opts: { priority?: 'normal' | 'low'; retries: number },
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.transport.request(unit, label, op, { priority: opts.priority ?? 'normal' });
      } catch (err) {
        const e = toModbusError(err, label);
        const noAnswer = e.code === 'MODBUS_TIMEOUT' || e.code === 'MODBUS_CRC' || e.code === 'MODBUS_BAD_FRAME';
        if (!noAnswer || attempt >= opts.retries) throw e;
        this.retried++;
      }
    }
  }

  /** What this device's unit refused so far; forgotten when its profile or unit id changes. */
  private refusedFor(device: DeviceBinding): RefusedPoints {
    const identity = `${device.profile.name}\u0000${device.unit}`;
    let r = this.refused.get(device.id);
    if (!r || r.identity !== identity) {
      if (r) this.healthTracker.setUnsupported(device.id, []);
      r = { identity, names: new Set(), addresses: new Set() };
      this.refused.set(device.id, r);
    }
    return r;
  }

  private remember(
    device: DeviceBinding,
    r: RefusedPoints,
    newly: readonly PointDef[],
    polled: readonly PointDef[],
  ): void {
    for (const p of newly) r.names.add(p.name);
    // The refused points' registers are holes from now on, except those a served point also covers.
    const served = new Set<string>();
    for (const p of [...device.profile.points, ...polled]) {
      if (r.names.has(p.name)) continue;
      for (let a = p.address; a < p.address + pointWidth(p); a++) served.add(addressKey(p.function, a));
    }
    for (const p of newly) {
      for (let a = p.address; a < p.address + pointWidth(p); a++) {
        const k = addressKey(p.function, a);
        if (!served.has(k)) r.addresses.add(k);
      }
    }
    this.healthTracker.setUnsupported(device.id, [...r.names]);
  }

  async writePoint(device: DeviceBinding, point: PointDef, value: number | boolean): Promise<void> {
    const unit = device.unit;
    if (unit === undefined || !Number.isInteger(unit) || unit < 0 || unit > 255) {
      throw new LangbiangError('COMMAND_INVALID', `device ${device.id} has no valid Modbus unit id`);
    }
    if (!point.writable || (point.function !== 'coil' && point.function !== 'holding')) {
      throw new LangbiangError('NOT_WRITABLE', `${device.id}.${point.name} is not writable`, {
        device: device.id,
        point: point.name,
      });
    }
    const label = `${this.id} unit ${unit} write ${point.function} ${point.address} (${device.id}.${point.name})`;
    // Setting a coil or a register to a value is idempotent: sending it again after a lost reply
    // leaves the same state. A trigger point acts per write, so it is sent once, whatever happens.
    const retries = point.trigger ? 0 : this.retries;
    const send = <T>(op: (c: ModbusClient) => Promise<T>) => this.requestWithRetries(unit, label, op, { retries });
    if (point.function === 'coil') {
      const on = typeof value === 'boolean' ? value : value !== 0;
      if (typeof value === 'number' && value !== 0 && value !== 1) {
        throw new LangbiangError(
          'OUT_OF_RANGE',
          `${device.id}.${point.name} is a coil: write 0/1 or true/false, not ${value}`,
        );
      }
      await send((c) => c.writeCoil(point.address, on));
      return;
    }
    let current: number[] | undefined;
    if (isRegisterBitField(point)) {
      // Modbus writes whole registers: read the other 15 bits first so they survive.
      current = await this.readRaw(unit, 'holding', point.address, 1);
    }
    const words = encodePoint(point, value, current);
    if (words.length === 1) {
      const word = words[0] as number;
      await send((c) => c.writeRegister(point.address, word));
    } else {
      await send((c) => c.writeRegisters(point.address, words));
    }
  }

  /**
   * One raw block read on the bus queue (for scan, profile identification and diagnostics).
   * Bits come back as 0/1. Rejects with a LangbiangError.
   */
  async readRaw(
    unit: number,
    fn: RegisterFunction,
    address: number,
    count: number,
    timeoutMs?: number,
  ): Promise<number[]> {
    const block: ReadBlock = { function: fn, address, count, points: [] };
    const data = await this.transport.request(
      unit,
      `${this.id} unit ${unit} ${fn} ${address}+${count}`,
      (c) => readBlock(c, block),
      {
        timeoutMs,
      },
    );
    return data.slice(0, count).map((d) => (typeof d === 'boolean' ? (d ? 1 : 0) : d));
  }

  health(): BusHealth {
    const h: BusHealth = {
      bus: this.id,
      type: this.type,
      open: this.transport.open,
      reconnects: this.transport.reconnects,
      queueDepth: this.transport.queue.depth,
      transactions: this.transport.queue.transactions,
      retries: this.retried,
      devices: this.healthTracker.all(),
    };
    if (this.transport.lastError !== undefined) h.lastError = this.transport.lastError;
    return h;
  }
}

const ILLEGAL_DATA_ADDRESS = 2;
/** a bound on the config's retries: each one can cost a full timeout */
const MAX_RETRIES = 5;
/** polls failed in a row after which a unit's requests get no retries (it is likely gone) */
const RETRY_AFTER_FAILED_POLLS = 2;
const REFUSED_REASON = 'refused by the unit (exception 2, illegal data address)';

interface RefusedPoints {
  /** profile name and unit id the refusals were learnt with */
  identity: string;
  names: Set<string>;
  /** `fn:address` of registers no served point covers: holes for the planner */
  addresses: Set<string>;
}

const addressKey = (fn: RegisterFunction, address: number) => `${fn}:${address}`;

/** What one poll of one device has gathered so far. */
interface PollState {
  unit: number;
  plan: PlanOptions;
  byName: Map<string, PointValue>;
  refusedNow: PointDef[];
  answered: boolean;
  exceptions: boolean;
  noAnswer: boolean;
  lastError?: string;
  skipRest?: { quality: Quality; error: string };
  /** a block already timed out this poll (its retries spent) */
  timedOutOnce?: boolean;
  priority: 'normal' | 'low';
  /** retries left for each request of this poll */
  retries: number;
}

async function readBlock(c: ModbusClient, block: ReadBlock): Promise<ReadonlyArray<number | boolean>> {
  switch (block.function) {
    case 'coil':
      return (await c.readCoils(block.address, block.count)).data;
    case 'discrete':
      return (await c.readDiscreteInputs(block.address, block.count)).data;
    case 'holding':
      return (await c.readHoldingRegisters(block.address, block.count)).data;
    case 'input':
      return (await c.readInputRegisters(block.address, block.count)).data;
  }
}

function decodeOne(block: ReadBlock, data: ReadonlyArray<number | boolean>, p: PointDef): PointValue {
  let value: number | string;
  try {
    value = decodePoint(p, sliceForPoint(block, data, p));
  } catch (err) {
    return { point: p.name, value: null, quality: 'decode_error', error: describeError(err) };
  }
  if (typeof value === 'number' && !inPointRange(p, value)) {
    // keep the value: a technician wants to see what the probe said, flagged
    return { point: p.name, value, quality: 'out_of_range', error: `outside ${p.min ?? '-∞'}..${p.max ?? '∞'}` };
  }
  return { point: p.name, value, quality: 'good' };
}
