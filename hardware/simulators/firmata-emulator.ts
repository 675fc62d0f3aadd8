import { SerialPort } from 'serialport';

/**
 * A small Firmata device: an Arduino Uno running StandardFirmata 2.5, as the host sees it over a
 * serial port (in tests, one end of a socat PTY pair). It answers the handshake (version,
 * firmware name, capabilities, analog mapping), pin-state queries and mode changes, reports the
 * analog channels the host enabled at the sampling interval with plausible soil-probe values, sends
 * digital port messages for reported input ports, and records every digital write.
 *
 * Protocol: Firmata 2.x (https://github.com/firmata/protocol, protocol.md and
 * capability-query.md / pin-state-query.md).
 */
const REPORT_VERSION = 0xf9;
const START_SYSEX = 0xf0;
const END_SYSEX = 0xf7;
const SET_PIN_MODE = 0xf4;
const SET_DIGITAL_PIN_VALUE = 0xf5;
const SYSTEM_RESET = 0xff;
const DIGITAL_MESSAGE = 0x90;
const ANALOG_MESSAGE = 0xe0;
const REPORT_ANALOG = 0xc0;
const REPORT_DIGITAL = 0xd0;
const REPORT_FIRMWARE = 0x79;
const CAPABILITY_QUERY = 0x6b;
const CAPABILITY_RESPONSE = 0x6c;
const ANALOG_MAPPING_QUERY = 0x69;
const ANALOG_MAPPING_RESPONSE = 0x6a;
const PIN_STATE_QUERY = 0x6d;
const PIN_STATE_RESPONSE = 0x6e;
const SAMPLING_INTERVAL = 0x7a;

export const MODE = { INPUT: 0, OUTPUT: 1, ANALOG: 2, PWM: 3, SERVO: 4, PULLUP: 0x0b } as const;

const FIRMWARE_NAME = 'StandardFirmata.ino';
const VERSION = [2, 5] as const;
// Uno: D0–D13, then A0–A5 as pins 14–19
const DIGITAL_PINS = 14;
const ANALOG_PINS = 6;
const PWM_PINS = new Set([3, 5, 6, 9, 10, 11]);

export interface DigitalWrite {
  pin: number;
  value: 0 | 1;
  at: number;
}

export interface FirmataEmulatorOptions {
  path: string;
  baudRate?: number;
  /** send version and firmware name on start, as StandardFirmata does after a reset (default true) */
  announce?: boolean;
}

interface Pin {
  mode: number;
  value: number;
}

export class FirmataEmulator {
  readonly writes: DigitalWrite[] = [];
  /** every command byte sequence received, by name, for tests */
  readonly received: string[] = [];
  private readonly pins: Pin[] = [];
  private readonly analogReporting = new Set<number>();
  private readonly portReporting = new Set<number>();
  private readonly analogOverride = new Map<number, number>();
  private samplingMs = 19;
  private timer: NodeJS.Timeout | null = null;
  private buf: number[] = [];
  private readonly started = Date.now();

  private constructor(private readonly port: SerialPort) {
    for (let i = 0; i < DIGITAL_PINS + ANALOG_PINS; i++) {
      this.pins.push({ mode: i >= DIGITAL_PINS ? MODE.ANALOG : MODE.OUTPUT, value: 0 });
    }
    port.on('data', (d: Buffer) => this.onData(d));
    port.on('error', () => {});
  }

  static async start(opts: FirmataEmulatorOptions): Promise<FirmataEmulator> {
    const port = new SerialPort({ path: opts.path, baudRate: opts.baudRate ?? 57600, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    const emu = new FirmataEmulator(port);
    emu.schedule();
    if (opts.announce !== false) {
      emu.sendVersion();
      emu.sendFirmware();
    }
    return emu;
  }

  /** fix an analog channel's raw value (0–1023) instead of the simulated probe */
  setAnalog(channel: number, raw: number): void {
    this.analogOverride.set(channel, raw);
  }

  /** drive a digital input pin (reported if its port reporting is on) */
  setDigitalInput(pin: number, value: 0 | 1): void {
    const p = this.pins[pin];
    if (!p) return;
    p.value = value;
    const port = pin >> 3;
    if (this.portReporting.has(port)) this.sendPort(port);
  }

  pinMode(pin: number): number | undefined {
    return this.pins[pin]?.mode;
  }

  pinValue(pin: number): number | undefined {
    return this.pins[pin]?.value;
  }

  isReportingAnalog(channel: number): boolean {
    return this.analogReporting.has(channel);
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.port.isOpen) return;
    await new Promise<void>((resolve) => this.port.close(() => resolve()));
  }

  private send(bytes: number[]): void {
    if (this.port.isOpen) this.port.write(Buffer.from(bytes));
  }

  private sendVersion(): void {
    this.send([REPORT_VERSION, VERSION[0], VERSION[1]]);
  }

  private sendFirmware(): void {
    const name: number[] = [];
    for (const c of Buffer.from(FIRMWARE_NAME, 'ascii')) name.push(c & 0x7f, (c >> 7) & 0x7f);
    this.send([START_SYSEX, REPORT_FIRMWARE, VERSION[0], VERSION[1], ...name, END_SYSEX]);
  }

  private analogValue(channel: number): number {
    const fixed = this.analogOverride.get(channel);
    if (fixed !== undefined) return fixed;
    // a capacitive soil probe: ~300 (wet) to ~600 (dry), drying slowly, with a little ADC noise
    const t = (Date.now() - this.started) / 1000;
    const v = 420 + 80 * Math.sin(t / 600 + channel) + ((t * 7 + channel * 13) % 5) - 2;
    return Math.max(0, Math.min(1023, Math.round(v)));
  }

  private sendAnalog(channel: number): void {
    const v = this.analogValue(channel);
    this.send([ANALOG_MESSAGE | channel, v & 0x7f, (v >> 7) & 0x7f]);
  }

  private sendPort(port: number): void {
    let value = 0;
    for (let i = 0; i < 8; i++) {
      const p = this.pins[port * 8 + i];
      if (p && (p.mode === MODE.INPUT || p.mode === MODE.PULLUP) && p.value) value |= 1 << i;
    }
    this.send([DIGITAL_MESSAGE | port, value & 0x7f, (value >> 7) & 0x7f]);
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      for (const ch of this.analogReporting) this.sendAnalog(ch);
      this.schedule();
    }, this.samplingMs);
    this.timer.unref();
  }

  private onData(data: Buffer): void {
    for (const byte of data) {
      const buf = this.buf;
      if (buf.length === 0 && byte < 0x80) continue; // mid-message garbage: wait for a command byte
      if (byte >= 0x80 && byte !== END_SYSEX && buf[0] !== START_SYSEX) buf.length = 0;
      buf.push(byte);
      const cmd = buf[0]!;
      if (cmd === START_SYSEX) {
        if (byte === END_SYSEX) {
          this.sysex(buf.slice(1, -1));
          buf.length = 0;
        }
        continue;
      }
      if (cmd === REPORT_VERSION) {
        this.received.push('REPORT_VERSION');
        this.sendVersion();
        buf.length = 0;
      } else if (cmd === SYSTEM_RESET) {
        this.received.push('SYSTEM_RESET');
        this.analogReporting.clear();
        this.portReporting.clear();
        buf.length = 0;
      } else if (buf.length === 3) {
        this.command(buf[0]!, buf[1]!, buf[2]!);
        buf.length = 0;
      } else if (buf.length === 2 && ((cmd & 0xf0) === REPORT_ANALOG || (cmd & 0xf0) === REPORT_DIGITAL)) {
        this.report(cmd, buf[1]!);
        buf.length = 0;
      }
    }
  }

  private report(cmd: number, on: number): void {
    const n = cmd & 0x0f;
    if ((cmd & 0xf0) === REPORT_ANALOG) {
      this.received.push(`REPORT_ANALOG ${n} ${on}`);
      if (on) {
        this.analogReporting.add(n);
        this.sendAnalog(n); // StandardFirmata answers at once, so the host knows the value without waiting a sample
      } else this.analogReporting.delete(n);
    } else {
      this.received.push(`REPORT_DIGITAL ${n} ${on}`);
      if (on) {
        this.portReporting.add(n);
        this.sendPort(n);
      } else this.portReporting.delete(n);
    }
  }

  private command(cmd: number, a: number, b: number): void {
    const high = cmd & 0xf0;
    if (cmd === SET_PIN_MODE) {
      this.received.push(`SET_PIN_MODE ${a} ${b}`);
      const p = this.pins[a];
      if (p) p.mode = b;
      return;
    }
    if (cmd === SET_DIGITAL_PIN_VALUE) {
      this.received.push(`SET_DIGITAL_PIN_VALUE ${a} ${b}`);
      this.digitalWrite(a, b ? 1 : 0);
      return;
    }
    if (high === DIGITAL_MESSAGE) {
      const port = cmd & 0x0f;
      const value = a | (b << 7);
      this.received.push(`DIGITAL_MESSAGE ${port} ${value}`);
      for (let i = 0; i < 8; i++) {
        const pin = port * 8 + i;
        const p = this.pins[pin];
        // like StandardFirmata: a port write only drives the pins in OUTPUT mode
        if (p && p.mode === MODE.OUTPUT) {
          const v = ((value >> i) & 1) as 0 | 1;
          if (v !== p.value) this.digitalWrite(pin, v);
        }
      }
      return;
    }
    if (high === ANALOG_MESSAGE) {
      const pin = cmd & 0x0f;
      this.received.push(`ANALOG_MESSAGE ${pin} ${a | (b << 7)}`);
      const p = this.pins[pin];
      if (p) p.value = a | (b << 7);
    }
  }

  private digitalWrite(pin: number, value: 0 | 1): void {
    const p = this.pins[pin];
    if (!p) return;
    p.value = value;
    this.writes.push({ pin, value, at: Date.now() });
  }

  private sysex(body: number[]): void {
    const [cmd, ...data] = body;
    switch (cmd) {
      case REPORT_FIRMWARE:
        this.received.push('REPORT_FIRMWARE');
        this.sendFirmware();
        return;
      case CAPABILITY_QUERY: {
        this.received.push('CAPABILITY_QUERY');
        const out = [START_SYSEX, CAPABILITY_RESPONSE];
        for (let pin = 0; pin < DIGITAL_PINS + ANALOG_PINS; pin++) {
          // mode, resolution pairs, 0x7F ends the pin; D0/D1 carry the USB serial line
          out.push(MODE.INPUT, 1, MODE.OUTPUT, 1, MODE.PULLUP, 1);
          if (pin >= DIGITAL_PINS) out.push(MODE.ANALOG, 10);
          if (PWM_PINS.has(pin)) out.push(MODE.PWM, 8, MODE.SERVO, 14);
          out.push(0x7f);
        }
        out.push(END_SYSEX);
        this.send(out);
        return;
      }
      case ANALOG_MAPPING_QUERY: {
        this.received.push('ANALOG_MAPPING_QUERY');
        const out = [START_SYSEX, ANALOG_MAPPING_RESPONSE];
        for (let pin = 0; pin < DIGITAL_PINS + ANALOG_PINS; pin++)
          out.push(pin >= DIGITAL_PINS ? pin - DIGITAL_PINS : 0x7f);
        out.push(END_SYSEX);
        this.send(out);
        return;
      }
      case PIN_STATE_QUERY: {
        const pin = data[0] ?? 0;
        this.received.push(`PIN_STATE_QUERY ${pin}`);
        const p = this.pins[pin];
        if (!p) return;
        // state: the output level for outputs, the pull-up for inputs (0 here)
        const state = p.mode === MODE.OUTPUT || p.mode === MODE.PWM ? p.value : p.mode === MODE.PULLUP ? 1 : 0;
        this.send([
          START_SYSEX,
          PIN_STATE_RESPONSE,
          pin,
          p.mode,
          state & 0x7f,
          ...(state > 0x7f ? [(state >> 7) & 0x7f] : []),
          END_SYSEX,
        ]);
        return;
      }
      case SAMPLING_INTERVAL: {
        const ms = (data[0] ?? 0) | ((data[1] ?? 0) << 7);
        this.received.push(`SAMPLING_INTERVAL ${ms}`);
        if (ms >= 1) {
          this.samplingMs = ms;
          if (this.timer) clearTimeout(this.timer);
          this.schedule();
        }
        return;
      }
      default:
        this.received.push(`SYSEX 0x${(cmd ?? 0).toString(16)}`);
    }
  }
}
