import type { BusDriver, BusHealth, DeviceBinding } from '../../gateway/core/driver.js';
import { describeError, LangbiangError } from '../../gateway/core/errors.js';
import type { PointDef, RegisterFunction } from '../../gateway/core/point.js';
import type { PointValue, Quality } from '../../gateway/core/reading.js';
import { decodePoint, encodePoint, inPointRange, isRegisterBitField } from './codec.js';
import { qualityForError, reasonForError, toModbusError } from './errors.js';
import { type BackoffPolicy, DEFAULT_BACKOFF, DeviceHealthTracker, type PollOutcome } from './health.js';
import { planReads, type ReadBlock, sliceForPoint } from './planner.js';
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
}

export interface ModbusTcpOptions {
  id: string;
  host: string;
  port: number;
  timeoutMs: number;
  /** default 0: TCP frames need no gap, but slow serial gateways behind TCP may want one */
  interFrameDelayMs?: number;
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

  static rtu(o: ModbusRtuOptions, deps: ModbusBusDeps = {}): ModbusBus {
    const target: TransportTarget = {
      kind: 'rtu',
      serial: { path: o.path, baudRate: o.baudRate, parity: o.parity, stopBits: o.stopBits, dataBits: o.dataBits },
    };
    const gap = o.interFrameDelayMs ?? rtuInterFrameDelayMs(o);
    return new ModbusBus(o.id, 'modbus-rtu', target, o.timeoutMs, gap, deps);
  }

  static tcp(o: ModbusTcpOptions, deps: ModbusBusDeps = {}): ModbusBus {
    return new ModbusBus(
      o.id,
      'modbus-tcp',
      { kind: 'tcp', host: o.host, port: o.port },
      o.timeoutMs,
      o.interFrameDelayMs ?? 0,
      deps,
    );
  }

  private constructor(
    id: string,
    type: 'modbus-rtu' | 'modbus-tcp',
    target: TransportTarget,
    timeoutMs: number,
    interFrameDelayMs: number,
    deps: ModbusBusDeps,
  ) {
    this.id = id;
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

    let blocks: ReadBlock[];
    try {
      blocks = planReads(points, { maxRegisters: device.profile.maxReadRegisters });
    } catch (err) {
      return all('decode_error', describeError(err));
    }

    const byName = new Map<string, PointValue>();
    let answered = false;
    let exceptions = false;
    let noAnswer = false;
    let lastError: string | undefined;
    let skipRest: { quality: Quality; error: string } | undefined;
    const priority = this.healthTracker.isSuspect(device.id) ? 'low' : 'normal';

    for (const block of blocks) {
      if (skipRest) {
        for (const p of block.points) byName.set(p.name, { point: p.name, value: null, ...skipRest });
        continue;
      }
      const label = `${this.id} unit ${unit} ${block.function} ${block.address}+${block.count}`;
      try {
        const data = await this.transport.request(unit, label, (c) => readBlock(c, block), { priority });
        answered = true;
        for (const p of block.points) byName.set(p.name, decodeOne(block, data, p));
      } catch (err) {
        const e = toModbusError(err, label);
        const quality = qualityForError(e);
        const error = reasonForError(e);
        lastError = error;
        for (const p of block.points) byName.set(p.name, { point: p.name, value: null, quality, error });
        if (quality === 'exception') exceptions = true;
        else if (quality === 'timeout' || quality === 'crc_error') noAnswer = true;
        // A unit that did not answer one block will not answer the next: don't spend a
        // timeout per block. A closed bus fails everything after it anyway.
        if (quality === 'timeout' || quality === 'bus_error') skipRest = { quality, error };
      }
    }

    let outcome: PollOutcome | undefined;
    if (answered) outcome = 'ok';
    else if (exceptions) outcome = 'answered_with_exception';
    else if (noAnswer) outcome = 'no_answer';
    // Bus loss says nothing about the device: its health stays as it was.
    if (outcome) this.healthTracker.record(device.id, outcome, lastError);

    return points.map(
      (p) => byName.get(p.name) ?? { point: p.name, value: null, quality: 'decode_error', error: 'not planned' },
    );
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
    if (point.function === 'coil') {
      const on = typeof value === 'boolean' ? value : value !== 0;
      if (typeof value === 'number' && value !== 0 && value !== 1) {
        throw new LangbiangError(
          'OUT_OF_RANGE',
          `${device.id}.${point.name} is a coil: write 0/1 or true/false, not ${value}`,
        );
      }
      await this.transport.request(unit, label, (c) => c.writeCoil(point.address, on));
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
      await this.transport.request(unit, label, (c) => c.writeRegister(point.address, word));
    } else {
      await this.transport.request(unit, label, (c) => c.writeRegisters(point.address, words));
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
      devices: this.healthTracker.all(),
    };
    if (this.transport.lastError !== undefined) h.lastError = this.transport.lastError;
    return h;
  }
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
