import net from 'node:net';
import modbusSerial from 'modbus-serial';
import { describeError, LangbiangError } from '../../gateway/core/errors.js';
import { toModbusError } from './errors.js';
import { RequestQueue } from './queue.js';
import { RtuFramedPort, type RtuSerialOptions } from './rtu-port.js';

// A CommonJS module: the default import is the client class, and its `.default` points back at
// itself, which is what the type declarations describe.
const ModbusRTU = modbusSerial.default;
export type ModbusClient = InstanceType<typeof ModbusRTU>;

export type TransportTarget = { kind: 'rtu'; serial: RtuSerialOptions } | { kind: 'tcp'; host: string; port: number };

export interface TransportOptions {
  id: string;
  target: TransportTarget;
  timeoutMs: number;
  interFrameDelayMs: number;
  /** first reopen delay after the port/socket is lost; doubles per failed attempt */
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  onStateChange?: (state: { open: boolean; error?: string }) => void;
}

/**
 * One physical bus: the modbus-serial client, its port or socket, and the request queue.
 *
 * A client whose port closed or errored is never reused: modbus-serial keeps half-finished
 * transactions and listeners on it. On loss we fail everything queued (bus_error), throw the
 * client away and build a new one after an exponential backoff, until close() is called.
 * Every event source gets an 'error' listener, so an unplugged USB adapter or a TCP reset can
 * never surface as an unhandled 'error' event.
 */
export class ModbusTransport {
  readonly queue: RequestQueue;
  private client: ModbusClient | undefined;
  private teardown: (() => void) | undefined;
  /** bumps on every (re)build; events from older clients are ignored */
  private generation = 0;
  private isOpenNow = false;
  private closing = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAttempt = 0;
  private connecting: Promise<void> | undefined;
  lastError: string | undefined;
  reconnects = 0;

  constructor(private readonly opts: TransportOptions) {
    this.queue = new RequestQueue({ timeoutMs: opts.timeoutMs, interFrameDelayMs: opts.interFrameDelayMs });
  }

  get open(): boolean {
    return this.isOpenNow;
  }

  get describeTarget(): string {
    const t = this.opts.target;
    return t.kind === 'rtu' ? t.serial.path : `${t.host}:${t.port}`;
  }

  /**
   * Open the port once. On failure the bus keeps retrying in the background (a gateway must
   * survive booting with the adapter unplugged) and this rejects with PORT_OPEN_FAILED so a
   * one-shot caller (CLI read/scan) can report it and close().
   */
  async start(): Promise<void> {
    this.closing = false;
    try {
      await this.connect();
    } catch (err) {
      this.scheduleReconnect();
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.generation++;
    this.queue.failAll(new LangbiangError('BUS_CLOSED', `bus ${this.opts.id} closed`));
    const wasOpen = this.isOpenNow;
    this.isOpenNow = false;
    this.client = undefined;
    const t = this.teardown;
    this.teardown = undefined;
    t?.();
    if (wasOpen) this.opts.onStateChange?.({ open: false });
  }

  /**
   * Run one transaction for `unit` on the queue. Rejects with a LangbiangError: MODBUS_TIMEOUT,
   * MODBUS_CRC, MODBUS_BAD_FRAME, MODBUS_EXCEPTION (ModbusExceptionError) or BUS_CLOSED.
   */
  request<T>(
    unit: number,
    label: string,
    op: (client: ModbusClient) => Promise<T>,
    opts: { timeoutMs?: number; priority?: 'normal' | 'low' } = {},
  ): Promise<T> {
    if (!this.isOpenNow || !this.client) {
      return Promise.reject(
        new LangbiangError(
          'BUS_CLOSED',
          `${label}: bus ${this.opts.id} is not open${this.lastError ? ` (${this.lastError})` : ''}`,
        ),
      );
    }
    const timeout = opts.timeoutMs ?? this.opts.timeoutMs;
    return this.queue.push({
      label,
      timeoutMs: timeout,
      priority: opts.priority ?? 'normal',
      run: async () => {
        const client = this.client;
        const gen = this.generation;
        if (!this.isOpenNow || !client)
          throw new LangbiangError('BUS_CLOSED', `${label}: bus ${this.opts.id} is not open`);
        client.setID(unit);
        client.setTimeout(timeout);
        try {
          return await op(client);
        } catch (err) {
          const e = toModbusError(err, label);
          // The port failed under us (write error, closed fd) before any close event: same as losing it.
          if (e.code === 'PORT_NOT_OPEN' || e.code === 'BUS_CLOSED') this.onLost(gen, err);
          throw e;
        }
      },
    });
  }

  private connect(): Promise<void> {
    if (!this.connecting) {
      this.connecting = this.build().finally(() => {
        this.connecting = undefined;
      });
    }
    return this.connecting;
  }

  private async build(): Promise<void> {
    const gen = ++this.generation;
    const lost = (err?: unknown) => this.onLost(gen, err);
    try {
      if (this.opts.target.kind === 'tcp') await this.buildTcp(this.opts.target, lost);
      else await this.buildRtu(this.opts.target.serial, lost);
    } catch (err) {
      this.teardown?.();
      this.teardown = undefined;
      this.client = undefined;
      this.lastError = describeError(err);
      throw new LangbiangError(
        'PORT_OPEN_FAILED',
        `cannot open bus ${this.opts.id} (${this.describeTarget}): ${this.lastError}`,
        undefined,
        {
          cause: err,
        },
      );
    }
    if (gen !== this.generation || this.closing) {
      // stop() ran while we were connecting
      this.teardown?.();
      return;
    }
    this.isOpenNow = true;
    this.reconnectAttempt = 0;
    this.lastError = undefined;
    this.opts.onStateChange?.({ open: true });
  }

  private async buildTcp(target: { host: string; port: number }, lost: (err?: unknown) => void): Promise<void> {
    const socket = new net.Socket();
    this.teardown = () => socket.destroy();
    await new Promise<void>((resolve, reject) => {
      const connectTimeout = setTimeout(
        () => reject(new Error(`connect timed out after ${Math.max(this.opts.timeoutMs, 2000)} ms`)),
        Math.max(this.opts.timeoutMs, 2000),
      );
      socket.once('error', (err) => {
        clearTimeout(connectTimeout);
        reject(err);
      });
      socket.connect({ host: target.host, port: target.port }, () => {
        clearTimeout(connectTimeout);
        resolve();
      });
    });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.on('error', lost);
    socket.on('close', () => lost(new Error('connection closed by peer')));
    const client = new ModbusRTU();
    client.on('error', lost);
    await client.linkTCP(socket, { port: target.port });
    this.client = client;
  }

  private async buildRtu(serial: RtuSerialOptions, lost: (err?: unknown) => void): Promise<void> {
    const port = new RtuFramedPort(serial);
    // listeners before open: serialport may emit 'error' at any time
    port.on('error', lost);
    port.on('close', (err?: Error) => lost(err ?? new Error('port closed')));
    this.teardown = () => {
      port.removeAllListeners('close');
      port.close();
    };
    const client = new ModbusRTU(port);
    client.on('error', lost);
    await new Promise<void>((resolve, reject) => client.open((err: Error | null) => (err ? reject(err) : resolve())));
    this.client = client;
  }

  private onLost(gen: number, err?: unknown): void {
    if (gen !== this.generation || this.closing) return;
    this.generation++;
    const reason = err === undefined ? 'connection lost' : describeError(err);
    this.lastError = reason;
    const wasOpen = this.isOpenNow;
    this.isOpenNow = false;
    this.client = undefined;
    const t = this.teardown;
    this.teardown = undefined;
    try {
      t?.();
    } catch {
      // tearing down a dead port may throw; it is dead either way
    }
    this.queue.failAll(new LangbiangError('BUS_CLOSED', `bus ${this.opts.id} lost: ${reason}`));
    if (wasOpen) this.opts.onStateChange?.({ open: false, error: reason });
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closing || this.reconnectTimer) return;
    const base = this.opts.reconnectBaseMs ?? 500;
    const max = this.opts.reconnectMaxMs ?? 30_000;
    const delay = Math.min(max, base * 2 ** this.reconnectAttempt);
    this.reconnectAttempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closing) return;
      this.connect().then(
        () => {
          this.reconnects++;
        },
        () => this.scheduleReconnect(),
      );
    }, delay);
    // a pending reopen must not keep a one-shot CLI process alive
    this.reconnectTimer.unref();
  }
}
