import net from 'node:net';
import { SerialPort } from 'serialport';
import { LangbiangError } from '../../gateway/core/errors.js';
import { crcOk, withCrc } from './crc16.js';
import { type SimBehaviour, type SimUnitSpec, type SimUnitStats, SimulatedUnit } from './sim-unit.js';

export type { SimBehaviour, SimUnitSpec, SimUnitStats } from './sim-unit.js';

type Reply = { answer: Buffer; delayMs: number; garble: boolean } | undefined;

export interface SimTcpOptions {
  host?: string;
  /** 0 (default) picks a free port; read it back from `.port` */
  port?: number;
  units: SimUnitSpec[];
  clock?: () => number;
}

export interface SimSerialOptions {
  /** serial device the simulated bus is on (e.g. one end of a PTY pair) */
  path: string;
  baudRate?: number;
  parity?: 'none' | 'even' | 'odd';
  stopBits?: 1 | 2;
  dataBits?: 7 | 8;
  units: SimUnitSpec[];
  clock?: () => number;
}

/** Silence that ends an RTU frame whose length the function code does not tell. */
const RTU_SILENCE_MS = 20;

/**
 * Modbus devices standing in for the physical world: several unit ids behind one TCP port (as a
 * Modbus TCP gateway serves them) or on one RTU serial line. Each unit follows its profile and a
 * behaviour: normal, dead (never answers), slow (answers late), exception (answers with an
 * exception), drop (of every four requests, one answer garbled and one lost). Beside the behaviour,
 * a unit may refuse some of its profile's points (exception 2) and lose a fraction of its answers.
 */
export class ModbusSimulator {
  private readonly units = new Map<number, SimulatedUnit>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closer: (() => Promise<void>) | undefined;
  private closed = false;
  port?: number;
  path?: string;

  private constructor(specs: SimUnitSpec[], clock: () => number) {
    for (const spec of specs) {
      if (this.units.has(spec.unit))
        throw new LangbiangError('USAGE', `unit ${spec.unit} is simulated twice on one bus`);
      this.units.set(spec.unit, new SimulatedUnit(spec, clock));
    }
  }

  static async tcp(opts: SimTcpOptions): Promise<ModbusSimulator> {
    const sim = new ModbusSimulator(opts.units, opts.clock ?? Date.now);
    await sim.listenTcp(opts.host ?? '127.0.0.1', opts.port ?? 0);
    return sim;
  }

  static async serial(opts: SimSerialOptions): Promise<ModbusSimulator> {
    const sim = new ModbusSimulator(opts.units, opts.clock ?? Date.now);
    await sim.openSerial(opts);
    return sim;
  }

  get unitIds(): number[] {
    return [...this.units.keys()];
  }

  private unit(unit: number): SimulatedUnit {
    const u = this.units.get(unit);
    if (!u) throw new LangbiangError('USAGE', `unit ${unit} is not simulated here (units: ${this.unitIds.join(', ')})`);
    return u;
  }

  setBehaviour(unit: number, b: SimBehaviour): void {
    const u = this.unit(unit);
    u.behaviour = b;
    u.dropCounter = 0;
  }

  setValue(unit: number, point: string, value: number): void {
    this.unit(unit).setValue(point, value);
  }

  /** Drives a point of a unit from a function of wall time (see SimulatedUnit.setModel). */
  setModel(unit: number, point: string, model: (wallMs: number) => number): void {
    this.unit(unit).setModel(point, model);
  }

  getValue(unit: number, point: string): number {
    const v = this.unit(unit).getValue(point);
    return typeof v === 'number' ? v : Number.NaN;
  }

  stats(unit: number): SimUnitStats {
    return this.unit(unit).stats;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.closer?.();
  }

  /** What the unit does with one request PDU: an answer (maybe late or garbled), or silence. */
  private reply(unitId: number, pdu: Buffer): Reply {
    const u = this.units.get(unitId);
    if (!u) return undefined; // nobody at that address: silence, as on a real bus
    const r = this.behave(u, pdu);
    // The unit acted (a write is done) but its answer died on a noisy line.
    if (r && u.loseAnswer()) return undefined;
    return r;
  }

  private behave(u: SimulatedUnit, pdu: Buffer): Reply {
    u.stats.requests++;
    const fc = pdu[0] ?? 0;
    switch (u.behaviour) {
      case 'dead':
        u.stats.dropped++;
        return undefined;
      case 'exception': {
        u.stats.answered++;
        u.stats.exceptionsByCode[u.exceptionCode] = (u.stats.exceptionsByCode[u.exceptionCode] ?? 0) + 1;
        return { answer: Buffer.from([fc | 0x80, u.exceptionCode]), delayMs: 0, garble: false };
      }
      case 'slow':
        u.stats.answered++;
        return { answer: u.answer(pdu), delayMs: u.slowMs, garble: false };
      case 'drop': {
        const n = u.dropCounter++;
        if (n % 4 === 3) {
          u.stats.dropped++;
          return undefined;
        }
        const garble = n % 4 === 1;
        if (garble) u.stats.garbled++;
        else u.stats.answered++;
        return { answer: u.answer(pdu), delayMs: 0, garble };
      }
      default:
        u.stats.answered++;
        return { answer: u.answer(pdu), delayMs: 0, garble: false };
    }
  }

  private later(ms: number, fn: () => void): void {
    if (ms <= 0) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  private async listenTcp(host: string, port: number): Promise<void> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      let rx = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        rx = Buffer.concat([rx, chunk]);
        // MBAP header: transaction id, protocol id, length (unit id + PDU), unit id
        while (rx.length >= 7) {
          const length = rx.readUInt16BE(4);
          if (length < 2 || length > 254) {
            socket.destroy(); // not Modbus TCP
            return;
          }
          if (rx.length < 6 + length) break;
          const txId = rx.readUInt16BE(0);
          const unitId = rx[6] ?? 0;
          const pdu = Buffer.from(rx.subarray(7, 6 + length));
          rx = rx.subarray(6 + length);
          const r = this.reply(unitId, pdu);
          if (!r) continue;
          // TCP has no CRC: a garbled answer is a short one
          const answer = r.garble ? r.answer.subarray(0, Math.max(1, r.answer.length - 1)) : r.answer;
          const frame = Buffer.alloc(7 + answer.length);
          frame.writeUInt16BE(txId, 0);
          frame.writeUInt16BE(0, 2);
          frame.writeUInt16BE(answer.length + 1, 4);
          frame[6] = unitId;
          answer.copy(frame, 7);
          this.later(r.delayMs, () => {
            if (!socket.destroyed) socket.write(frame);
          });
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', () => {});
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : port;
    this.closer = () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
  }

  private async openSerial(opts: SimSerialOptions): Promise<void> {
    const serial = new SerialPort({
      path: opts.path,
      baudRate: opts.baudRate ?? 9600,
      parity: opts.parity ?? 'none',
      stopBits: opts.stopBits ?? 1,
      dataBits: opts.dataBits ?? 8,
      autoOpen: false,
    });
    serial.on('error', () => {});
    await new Promise<void>((resolve, reject) =>
      serial.open((err) =>
        err
          ? reject(new LangbiangError('PORT_OPEN_FAILED', `simulator cannot open ${opts.path}: ${err.message}`))
          : resolve(),
      ),
    );
    this.path = opts.path;
    let rx = Buffer.alloc(0);
    let silence: NodeJS.Timeout | undefined;

    const handleFrame = (frame: Buffer) => {
      if (!crcOk(frame)) return; // a real slave ignores what it cannot read
      const unitId = frame[0] ?? 0;
      const pdu = Buffer.from(frame.subarray(1, -2));
      if (unitId === 0) {
        // broadcast: every unit acts, none answers
        for (const id of this.units.keys()) this.reply(id, pdu);
        return;
      }
      const r = this.reply(unitId, pdu);
      if (!r) return;
      const out = withCrc(Buffer.concat([Buffer.from([unitId]), r.answer]));
      if (r.garble) out[Math.min(2, out.length - 3)]! ^= 0x10; // line noise: a flipped bit, CRC no longer matches
      this.later(r.delayMs, () => {
        if (serial.isOpen) serial.write(out);
      });
    };

    const parse = () => {
      while (rx.length >= 4) {
        const fc = rx[1] ?? 0;
        let need: number | undefined;
        if (fc >= 1 && fc <= 6) need = 8;
        else if (fc === 15 || fc === 16) need = rx.length >= 7 ? 9 + (rx[6] ?? 0) : Number.POSITIVE_INFINITY;
        if (need === undefined || rx.length < need) return;
        const frame = rx.subarray(0, need);
        rx = rx.subarray(need);
        if (!crcOk(frame)) {
          rx = Buffer.alloc(0); // lost sync: wait for the line to go quiet
          return;
        }
        handleFrame(Buffer.from(frame));
      }
    };

    serial.on('data', (chunk: Buffer) => {
      rx = rx.length ? Buffer.concat([rx, chunk]) : Buffer.from(chunk);
      parse();
      if (silence) clearTimeout(silence);
      if (rx.length > 0) {
        silence = setTimeout(() => {
          const frame = rx;
          rx = Buffer.alloc(0);
          handleFrame(frame);
        }, RTU_SILENCE_MS);
      }
    });

    this.closer = () =>
      new Promise<void>((resolve) => {
        if (silence) clearTimeout(silence);
        if (!serial.isOpen) return resolve();
        serial.close(() => resolve());
      });
  }
}
