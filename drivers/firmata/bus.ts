import type { BusDriver, BusHealth, DeviceBinding, DeviceHealth } from '../../gateway/core/driver.js';
import { describeError, LangbiangError } from '../../gateway/core/errors.js';
import type { PointDef } from '../../gateway/core/point.js';
import type { PointValue, Quality } from '../../gateway/core/reading.js';
import { FirmataConnection, type FirmataConnectOptions } from './board.js';

export interface FirmataBusOptions {
  id: string;
  path: string;
  baudRate?: number;
  samplingIntervalMs?: number;
  reportVersionTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** first reconnect delay; doubles up to maxReconnectMs */
  reconnectMs?: number;
  maxReconnectMs?: number;
  /** an analog value older than this is reported as a timeout (default 5 × sampling, at least 3 s) */
  staleAfterMs?: number;
  /** wait for a pin-state answer */
  requestTimeoutMs?: number;
}

/** What a point of a firmata profile is, from its register-like `function`. */
type Role = 'analog' | 'digital-in' | 'digital-out';
function roleOf(p: PointDef): Role | null {
  if (p.function === 'input') return 'analog';
  if (p.function === 'discrete') return 'digital-in';
  if (p.function === 'coil') return 'digital-out';
  return null;
}

interface Sample {
  raw: number;
  at: number;
}

/**
 * The `firmata` bus: an Arduino-class board running StandardFirmata on a serial port, through
 * johnny-five (see board.ts). A point of a `kind: firmata` profile is bound to the device pin of the
 * same name: `function: input` is an analog channel (A0 = 0; raw 0–1023, then scale/offset),
 * `discrete` a digital input, `coil` a digital output (relay). Analog channels and input ports report
 * on their own; reads return the latest report. Outputs are read back with a PIN_STATE_QUERY.
 *
 * Board lost (USB unplugged, port closed) → every point reads `bus_error` and the bus reconnects with
 * exponential backoff; after the handshake the pins are set up again and the last commanded outputs
 * re-applied (the Arduino resets when its port opens, so its relays would otherwise fall back to off).
 */
export class FirmataBus implements BusDriver {
  readonly type = 'firmata';
  private conn: FirmataConnection | null = null;
  private connecting: Promise<void> | null = null;
  private closed = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private backoff: number;
  private reconnects = 0;
  private transactions = 0;
  private lastError: string | undefined;
  private readonly devices = new Map<string, DeviceBinding>();
  private readonly armed = new Set<string>();
  private readonly analog = new Map<number, Sample>();
  private readonly digital = new Map<number, Sample>();
  private readonly commanded = new Map<number, 0 | 1>();
  private readonly health_ = new Map<string, DeviceHealth>();
  private readonly o: Required<FirmataBusOptions>;

  constructor(opts: FirmataBusOptions) {
    const sampling = opts.samplingIntervalMs ?? 250;
    this.o = {
      baudRate: 57600,
      samplingIntervalMs: sampling,
      reportVersionTimeoutMs: 2000,
      handshakeTimeoutMs: 10_000,
      reconnectMs: 1000,
      maxReconnectMs: 30_000,
      staleAfterMs: Math.max(5 * sampling, 3000),
      requestTimeoutMs: 1000,
      ...opts,
    } as Required<FirmataBusOptions>;
    this.backoff = this.o.reconnectMs;
  }

  get id(): string {
    return this.o.id;
  }

  get connected(): boolean {
    return this.conn !== null;
  }

  get firmware(): string | null {
    return this.conn?.firmware ?? null;
  }

  /** Opens and handshakes; on failure rejects, and keeps retrying in the background until close(). */
  async open(): Promise<void> {
    this.closed = false;
    if (this.conn) return;
    try {
      await this.connectOnce();
    } catch (err) {
      this.scheduleReconnect();
      throw err;
    }
  }

  private connectOnce(): Promise<void> {
    if (this.connecting) return this.connecting;
    const opts: FirmataConnectOptions = {
      path: this.o.path,
      baudRate: this.o.baudRate,
      reportVersionTimeoutMs: this.o.reportVersionTimeoutMs,
      handshakeTimeoutMs: this.o.handshakeTimeoutMs,
      samplingIntervalMs: this.o.samplingIntervalMs,
    };
    this.connecting = (async () => {
      try {
        const conn = await FirmataConnection.connect(opts);
        if (this.closed) {
          await conn.close();
          return;
        }
        this.conn = conn;
        this.lastError = undefined;
        this.backoff = this.o.reconnectMs;
        conn.whenLost((reason) => void this.onLost(conn, reason));
        this.armed.clear();
        this.analog.clear();
        this.digital.clear();
        for (const d of this.devices.values()) this.arm(d);
        for (const [pin, v] of this.commanded) await conn.digitalWrite(pin, v).catch(() => {});
      } catch (err) {
        this.lastError = describeError(err);
        throw err;
      } finally {
        this.connecting = null;
      }
    })();
    return this.connecting;
  }

  private async onLost(conn: FirmataConnection, reason: string): Promise<void> {
    if (this.conn !== conn) return;
    this.conn = null;
    this.lastError = `board lost: ${reason}`;
    await conn.close().catch(() => {});
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.o.maxReconnectMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.closed || this.conn) return;
      this.reconnects++;
      this.connectOnce().catch(() => this.scheduleReconnect());
    }, delay);
    this.retryTimer.unref();
  }

  async attach(devices: readonly DeviceBinding[]): Promise<void> {
    for (const d of devices) {
      this.devices.set(d.id, d);
      if (this.conn) this.arm(d);
    }
  }

  /** Set up the device's pins on the board: reporting for inputs, output mode for relays. */
  private arm(device: DeviceBinding): void {
    const conn = this.conn;
    if (!conn || this.armed.has(device.id)) return;
    for (const p of device.profile.points) {
      const pin = device.pins?.[p.name];
      if (pin === undefined) continue;
      const role = roleOf(p);
      if (role === 'analog') {
        if (conn.analogPin(pin) === undefined) continue; // reported as a decode_error on read
        conn.watchAnalog(pin, (raw) => this.analog.set(pin, { raw, at: Date.now() }));
      } else if (role === 'digital-in') {
        if (!conn.pins[pin]) continue;
        conn.watchDigital(pin, (v) => this.digital.set(pin, { raw: v, at: Date.now() }));
      } else if (role === 'digital-out') {
        if (!conn.pins[pin]) continue;
        conn.output(pin);
      }
    }
    this.armed.add(device.id);
  }

  async readPoints(device: DeviceBinding, points: readonly PointDef[]): Promise<PointValue[]> {
    const h = this.deviceHealth(device.id);
    h.polls++;
    if (!this.devices.has(device.id)) this.devices.set(device.id, device);
    const conn = this.conn;
    // a point whose pin the device does not map is not part of this device
    const mapped = points.filter((p) => device.pins?.[p.name] !== undefined);
    if (!conn) {
      const error = this.lastError ?? `Firmata board on ${this.o.path} is not connected`;
      return this.fail(h, mapped, 'bus_error', error);
    }
    this.arm(device);
    const out: PointValue[] = [];
    let failures = 0;
    for (const p of mapped) {
      const v = await this.readOne(conn, p, device.pins![p.name]!);
      if (v.quality !== 'good' && v.quality !== 'out_of_range') failures++;
      out.push(v);
    }
    this.transactions += mapped.length;
    if (failures === 0 || failures < out.length) {
      h.state = failures === 0 ? 'ok' : 'degraded';
      h.consecutiveFailures = 0;
      h.lastOkAt = Date.now();
    } else {
      h.errors++;
      h.consecutiveFailures++;
      h.state = 'degraded';
      h.lastError = out.find((v) => v.error)?.error;
    }
    return out;
  }

  private async readOne(conn: FirmataConnection, p: PointDef, pin: number): Promise<PointValue> {
    const role = roleOf(p);
    const bad = (quality: Quality, error: string): PointValue => ({ point: p.name, value: null, quality, error });
    if (role === 'analog') {
      if (conn.analogPin(pin) === undefined)
        return bad('decode_error', `A${pin} is not an analog channel of this board`);
      const s = this.analog.get(pin);
      if (!s || Date.now() - s.at > this.o.staleAfterMs)
        return bad('timeout', `no analog report from A${pin} in ${this.o.staleAfterMs} ms`);
      return this.scaled(p, s.raw);
    }
    if (!conn.pins[pin]) return bad('decode_error', `pin ${pin} does not exist on this board`);
    if (role === 'digital-in') {
      const s = this.digital.get(pin);
      if (!s) return bad('timeout', `no digital report from pin ${pin} yet`);
      return { point: p.name, value: s.raw ? 1 : 0, quality: 'good' };
    }
    if (role === 'digital-out') {
      try {
        const state = await conn.pinState(pin, this.o.requestTimeoutMs);
        return { point: p.name, value: state ? 1 : 0, quality: 'good' };
      } catch (err) {
        return bad('timeout', describeError(err));
      }
    }
    return bad(
      'decode_error',
      `function ${p.function} has no meaning on a Firmata board (use input, discrete or coil)`,
    );
  }

  private scaled(p: PointDef, raw: number): PointValue {
    const value = p.ladder ? ladderValue(p.ladder, raw) : Math.round((raw * p.scale + p.offset) * 1e6) / 1e6;
    const outside = (p.min !== undefined && value < p.min) || (p.max !== undefined && value > p.max);
    return { point: p.name, value, quality: outside ? 'out_of_range' : 'good' };
  }

  private fail(h: DeviceHealth, points: readonly PointDef[], quality: Quality, error: string): PointValue[] {
    h.errors++;
    h.consecutiveFailures++;
    h.state = 'degraded';
    h.lastError = error;
    return points.map((p) => ({ point: p.name, value: null, quality, error }));
  }

  async writePoint(device: DeviceBinding, point: PointDef, value: number | boolean): Promise<void> {
    const pin = device.pins?.[point.name];
    if (pin === undefined) throw new LangbiangError('UNKNOWN_POINT', `${device.id} maps no pin for ${point.name}`);
    if (roleOf(point) !== 'digital-out' || !point.writable)
      throw new LangbiangError('NOT_WRITABLE', `${device.id}.${point.name} is not a digital output`);
    const conn = this.conn;
    if (!conn)
      throw new LangbiangError('BOARD_NOT_READY', `Firmata board on ${this.o.path} is not connected (reconnecting)`);
    this.arm(device);
    const v: 0 | 1 = value === true || (typeof value === 'number' && value !== 0) ? 1 : 0;
    this.commanded.set(pin, v);
    this.transactions++;
    await conn.digitalWrite(pin, v);
  }

  private deviceHealth(id: string): DeviceHealth {
    let h = this.health_.get(id);
    if (!h) {
      h = { device: id, state: 'ok', consecutiveFailures: 0, polls: 0, errors: 0 };
      this.health_.set(id, h);
    }
    return h;
  }

  health(): BusHealth {
    return {
      bus: this.id,
      type: this.type,
      open: this.conn !== null,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      reconnects: this.reconnects,
      queueDepth: 0,
      transactions: this.transactions,
      devices: [...this.health_.values()].map((d) => ({ ...d })),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await this.connecting?.catch(() => {});
    const conn = this.conn;
    this.conn = null;
    await conn?.close();
  }
}

/**
 * A resistor ladder (a wind vane's reed switches closing one resistor each) gives one of a few
 * voltages: the step whose nominal reading is nearest wins. Resistor tolerance and supply drift move
 * a reading a little, never past the midpoint to the next step on a well-chosen ladder.
 */
export function ladderValue(steps: ReadonlyArray<{ raw: number; value: number }>, raw: number): number {
  let best = steps[0] as { raw: number; value: number };
  for (const s of steps) if (Math.abs(s.raw - raw) < Math.abs(best.raw - raw)) best = s;
  return best.value;
}
