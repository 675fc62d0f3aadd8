import { createRequire } from 'node:module';
import { describeError, LangbiangError } from '../../gateway/core/errors.js';

/**
 * The adapter between the driver and johnny-five: one connection to one board. johnny-five's
 * Board (frozen since 2021) runs over firmata-io, which speaks Firmata on OUR serialport 13 port
 * object; johnny-five's own serialport 8 is never loaded. What johnny-five would otherwise do to a
 * long-running process is switched off: no REPL, no debug console output, no SIGINT handler that
 * exits the process, and the board is removed from its global cache on close (else every reconnect
 * would leak a Board).
 *
 * The driver sees only this small surface, so swapping johnny-five for firmata-io alone (or a
 * newer IO plugin) touches this file.
 */
export interface FirmataConnectOptions {
  path: string;
  baudRate: number;
  /** ask for the version if the board has not announced itself within this (ms) */
  reportVersionTimeoutMs: number;
  /** give up on a handshake after this (ms) */
  handshakeTimeoutMs: number;
  /** analog reporting period on the board (ms) */
  samplingIntervalMs: number;
}

export interface PinInfo {
  supportedModes: number[];
  analogChannel: number;
  mode?: number;
  value?: number;
  state?: number;
}

/** The slice of firmata-io's Board we use (its types are not published). */
interface FirmataIo {
  MODES: Record<string, number>;
  pins: PinInfo[];
  analogPins: number[];
  firmware: { name?: string; version?: { major: number; minor: number } };
  version: { major?: number; minor?: number };
  isReady: boolean;
  on(ev: string, fn: (...a: unknown[]) => void): unknown;
  once(ev: string, fn: (...a: unknown[]) => void): unknown;
  removeListener(ev: string, fn: (...a: unknown[]) => void): unknown;
  removeAllListeners(): unknown;
  reportVersionTimeoutId?: NodeJS.Timeout;
}

interface J5Board {
  io: FirmataIo;
  timer: NodeJS.Timeout | null;
  on(ev: string, fn: (...a: unknown[]) => void): unknown;
  once(ev: string, fn: (...a: unknown[]) => void): unknown;
  removeAllListeners(): unknown;
  pinMode(pin: number, mode: number): unknown;
  analogRead(channel: number, cb: (value: number) => void): unknown;
  digitalRead(pin: number, cb: (value: number) => void): unknown;
  digitalWrite(pin: number, value: number): unknown;
  queryPinState(pin: number, cb: () => void): unknown;
}

interface SerialLike {
  isOpen: boolean;
  open(cb: (err: Error | null) => void): void;
  close(cb?: (err: Error | null) => void): void;
  drain(cb: (err: Error | null) => void): void;
  on(ev: string, fn: (...a: unknown[]) => void): unknown;
  removeAllListeners(): unknown;
}

const require = createRequire(import.meta.url);

export class FirmataConnection {
  private lostFired = false;
  private onLost: ((reason: string) => void) | null = null;

  private constructor(
    private readonly port: SerialLike,
    private readonly board: J5Board,
    private readonly cache: unknown[],
  ) {}

  /** Opens the port and completes the Firmata handshake; rejects with PORT_OPEN_FAILED or BOARD_NOT_READY. */
  static async connect(o: FirmataConnectOptions): Promise<FirmataConnection> {
    const { SerialPort } = await import('serialport');
    // CommonJS packages: firmata-io exports a transport-binding function with the class on .Firmata
    const firmataIo = require('firmata-io') as { Firmata: new (port: unknown, opts: object) => FirmataIo };
    const Board = require('johnny-five/lib/board.js') as (new (opts: object) => J5Board) & { cache: unknown[] };

    const port = new SerialPort({ path: o.path, baudRate: o.baudRate, autoOpen: false }) as unknown as SerialLike;
    // Firmata must see the port's 'open' event (johnny-five waits for "connect" before "ready"), so it is built before open()
    const io = new firmataIo.Firmata(port, {
      reportVersionTimeout: o.reportVersionTimeoutMs,
      samplingInterval: o.samplingIntervalMs,
    });
    // firmata-io re-emits transport errors; without a listener an EventEmitter 'error' would throw
    io.on('error', () => {});
    const board = new Board({ io, repl: false, debug: false, sigint: false, timeout: o.handshakeTimeoutMs + 60_000 });
    const conn = new FirmataConnection(port, board, Board.cache);

    let settle: ((err?: Error) => void) | null = null;
    const handshake = new Promise<void>((resolve, reject) => {
      settle = (err) => {
        settle = null;
        if (err) reject(err);
        else resolve();
      };
    });
    const timer = setTimeout(
      () =>
        settle?.(
          new LangbiangError(
            'BOARD_NOT_READY',
            `no Firmata handshake from ${o.path} within ${o.handshakeTimeoutMs} ms (is StandardFirmata flashed, at ${o.baudRate} baud?)`,
          ),
        ),
      o.handshakeTimeoutMs,
    );
    board.on('error', (e) => {
      const msg = describeError((e as { message?: string })?.message ?? e);
      if (settle) settle(new LangbiangError('BOARD_NOT_READY', `Firmata board on ${o.path}: ${msg}`));
      else conn.lost(msg);
    });
    board.once('ready', () => settle?.());
    port.on('close', (err) => {
      const why = err ? describeError(err) : 'port closed';
      if (settle)
        settle(new LangbiangError('BOARD_NOT_READY', `${o.path} closed during the Firmata handshake: ${why}`));
      else conn.lost(why);
    });
    port.on('error', (err) => {
      if (!settle) conn.lost(describeError(err));
    });

    try {
      await new Promise<void>((resolve, reject) =>
        port.open((err) =>
          err
            ? reject(
                new LangbiangError(
                  'PORT_OPEN_FAILED',
                  `cannot open ${o.path}: ${err.message}`,
                  { path: o.path },
                  { cause: err },
                ),
              )
            : resolve(),
        ),
      );
      await handshake;
    } catch (err) {
      clearTimeout(timer);
      await conn.close();
      throw err;
    }
    clearTimeout(timer);
    return conn;
  }

  get modes(): Record<string, number> {
    return this.board.io.MODES;
  }

  get firmware(): string {
    const f = this.board.io.firmware;
    return `${f.name ?? 'Firmata'} ${f.version?.major ?? '?'}.${f.version?.minor ?? '?'}`;
  }

  get pins(): readonly PinInfo[] {
    return this.board.io.pins;
  }

  /** board pin number of an analog channel (A0 = channel 0), or undefined */
  analogPin(channel: number): number | undefined {
    return this.board.io.analogPins[channel];
  }

  whenLost(fn: (reason: string) => void): void {
    this.onLost = fn;
  }

  private lost(reason: string): void {
    if (this.lostFired) return;
    this.lostFired = true;
    this.onLost?.(reason);
  }

  watchAnalog(channel: number, onValue: (raw: number) => void): void {
    this.board.pinMode(channel, this.modes.ANALOG!);
    this.board.analogRead(channel, onValue);
  }

  watchDigital(pin: number, onValue: (v: number) => void): void {
    this.board.pinMode(pin, this.modes.INPUT!);
    this.board.digitalRead(pin, onValue);
  }

  output(pin: number): void {
    this.board.pinMode(pin, this.modes.OUTPUT!);
  }

  async digitalWrite(pin: number, value: 0 | 1): Promise<void> {
    this.board.digitalWrite(pin, value);
    await new Promise<void>((resolve, reject) => this.port.drain((err) => (err ? reject(err) : resolve())));
  }

  /** PIN_STATE_QUERY: for an output, the level the board actually holds */
  pinState(pin: number, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const event = `pin-state-${pin}`;
      const done = () => {
        clearTimeout(timer);
        resolve(this.board.io.pins[pin]?.state ?? 0);
      };
      const timer = setTimeout(() => {
        this.board.io.removeListener(event, done);
        reject(new LangbiangError('BOARD_NOT_READY', `no pin-state answer for pin ${pin} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.board.queryPinState(pin, done);
    });
  }

  async close(): Promise<void> {
    this.lostFired = true;
    const i = this.cache.indexOf(this.board);
    if (i >= 0) this.cache.splice(i, 1);
    if (this.board.timer) clearTimeout(this.board.timer);
    if (this.board.io.reportVersionTimeoutId) clearTimeout(this.board.io.reportVersionTimeoutId);
    this.board.removeAllListeners();
    this.board.io.removeAllListeners();
    this.board.on('error', () => {});
    this.board.io.on('error', () => {});
    const port = this.port;
    port.removeAllListeners();
    port.on('error', () => {});
    if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }
}
