import { EventEmitter } from 'node:events';
import { SerialPort } from 'serialport';

/**
 * The port object modbus-serial's client drives for RTU, on serialport 13.
 *
 * modbus-serial's plain RTU port takes every 'data' chunk as a whole frame, and a serial read
 * often returns half a frame; its buffered port keeps stale bytes across requests, so a garbled
 * or late answer poisons the next transaction. This one assembles exactly one answer per request
 * (length known from the request's function code) and forgets leftovers when a new request goes
 * out. A garbled answer of the right length is handed up, so the client reports a CRC error
 * instead of waiting for a timeout.
 */
export interface RtuSerialOptions {
  path: string;
  baudRate: number;
  parity: 'none' | 'even' | 'odd';
  stopBits: 1 | 2;
  dataBits: 7 | 8;
}

const EXCEPTION_FRAME_LENGTH = 5;

function expectedAnswerLength(request: Buffer): number | undefined {
  const fc = request[1];
  switch (fc) {
    case 1:
    case 2:
      return 3 + Math.ceil(request.readUInt16BE(4) / 8) + 2;
    case 3:
    case 4:
      return 3 + 2 * request.readUInt16BE(4) + 2;
    case 5:
    case 6:
    case 15:
    case 16:
      return 8;
    default:
      return undefined;
  }
}

export class RtuFramedPort extends EventEmitter {
  private readonly serial: SerialPort;
  private rx: Buffer = Buffer.alloc(0);
  private expectUnit = -1;
  private expectFc = -1;
  private expectLength: number | undefined;
  // modbus-serial's client stores transaction ids on its port object
  _transactionIdRead = 1;
  _transactionIdWrite = 1;

  constructor(opts: RtuSerialOptions) {
    super();
    this.serial = new SerialPort({
      path: opts.path,
      baudRate: opts.baudRate,
      parity: opts.parity,
      stopBits: opts.stopBits,
      dataBits: opts.dataBits,
      autoOpen: false,
    });
    this.serial.on('data', (chunk: Buffer) => this.onData(chunk));
    this.serial.on('error', (err) => this.emit('error', err));
    this.serial.on('close', (err?: Error) => this.emit('close', err));
  }

  get isOpen(): boolean {
    return this.serial.isOpen;
  }

  open(callback: (err?: Error | null) => void): void {
    this.serial.open((err) => callback(err ?? null));
  }

  close(callback?: (err?: Error | null) => void): void {
    if (!this.serial.isOpen) {
      callback?.(null);
      return;
    }
    this.serial.close((err) => callback?.(err ?? null));
  }

  destroy(): void {
    if (this.serial.isOpen) this.serial.close(() => {});
  }

  write(frame: Buffer): void {
    this.rx = Buffer.alloc(0);
    this.expectUnit = frame[0] ?? -1;
    this.expectFc = frame[1] ?? -1;
    this.expectLength = frame.length >= 6 ? expectedAnswerLength(frame) : undefined;
    this.serial.write(frame, (err) => {
      if (err) this.emit('error', err);
    });
  }

  private onData(chunk: Buffer): void {
    this.rx = this.rx.length === 0 ? chunk : Buffer.concat([this.rx, chunk]);
    // Bytes from another unit (a late answer after a timeout, line noise) are not ours: drop them
    // and keep waiting, the real answer may still come.
    if (this.rx[0] !== this.expectUnit) {
      this.rx = Buffer.alloc(0);
      return;
    }
    if (this.rx.length < EXCEPTION_FRAME_LENGTH) return;
    if (this.rx[1] === (this.expectFc | 0x80)) this.emitFrame(EXCEPTION_FRAME_LENGTH);
    else if (this.expectLength !== undefined && this.rx.length >= this.expectLength) this.emitFrame(this.expectLength);
  }

  private emitFrame(length: number): void {
    const frame = this.rx.subarray(0, length);
    this.rx = Buffer.alloc(0);
    this.emit('data', frame);
  }
}
