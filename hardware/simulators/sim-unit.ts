import { decodePoint, encodePoint } from '../../drivers/modbus/codec.js';
import { LangbiangError } from '../../gateway/core/errors.js';
import { type DeviceProfile, type PointDef, pointWidth, type RegisterFunction } from '../../gateway/core/point.js';
import { modelFor, restingValue, type ValueModel } from './value-models.js';

export type SimBehaviour = 'normal' | 'dead' | 'slow' | 'exception' | 'drop';

export interface SimUnitSpec {
  unit: number;
  profile: DeviceProfile;
  behaviour?: SimBehaviour;
  /** varies the value models between units of the same profile */
  seed?: number;
  /** 'slow': answer after this long (default 2000 ms, longer than typical bus timeouts) */
  slowMs?: number;
  /** 'exception': the exception code answered to everything (default 4, server device failure) */
  exceptionCode?: number;
  /**
   * Points of the profile this unit does not have (another firmware or variant): any read touching
   * their registers is answered with exception 2, as an SDM120 without reactive energy does.
   */
  refuse?: string[];
  /**
   * Fraction (0..1) of answers lost on the line, at random (seeded by `seed`), whatever the
   * behaviour: the noisy RS-485 run or cheap converter. The request is counted, the answer never sent.
   */
  lossRate?: number;
}

export interface SimUnitStats {
  requests: number;
  answered: number;
  /** exception answers by code; exceptionsByCode[2] counts illegal-address answers (holes) */
  exceptionsByCode: Record<number, number>;
  /** requests that touched an address the profile does not list */
  illegalAddressRequests: number;
  writes: number;
  dropped: number;
  garbled: number;
  /** answers lost to `lossRate` */
  lost: number;
}

const FC_CODES: Record<number, RegisterFunction> = { 1: 'coil', 2: 'discrete', 3: 'holding', 4: 'input' };

function exceptionPdu(fc: number, code: number): Buffer {
  return Buffer.from([fc | 0x80, code]);
}

/**
 * One simulated Modbus unit: a register image built from a DeviceProfile, kept fresh by the value
 * models, answering request PDUs the way a real device does — including exception 2 for any
 * request that touches an address the profile does not list.
 */
export class SimulatedUnit {
  readonly unit: number;
  readonly profile: DeviceProfile;
  behaviour: SimBehaviour;
  readonly slowMs: number;
  readonly exceptionCode: number;
  readonly stats: SimUnitStats = {
    requests: 0,
    answered: 0,
    exceptionsByCode: {},
    illegalAddressRequests: 0,
    writes: 0,
    dropped: 0,
    garbled: 0,
    lost: 0,
  };
  readonly lossRate: number;
  private lossState: number;
  /** counts requests while behaviour is 'drop', to drop/garble in a fixed pattern */
  dropCounter = 0;
  private readonly image: Record<RegisterFunction, Map<number, number>> = {
    coil: new Map(),
    discrete: new Map(),
    holding: new Map(),
    input: new Map(),
  };
  /** which points cover each address (bit fields share a register) */
  private readonly owners: Record<RegisterFunction, Map<number, PointDef[]>> = {
    coil: new Map(),
    discrete: new Map(),
    holding: new Map(),
    input: new Map(),
  };
  private readonly models = new Map<string, ValueModel>();
  /** points whose value was written (by a client or setValue): the model no longer drives them */
  private readonly pinned = new Set<string>();
  private readonly points = new Map<string, PointDef>();

  constructor(
    spec: SimUnitSpec,
    private readonly now: () => number,
  ) {
    if (spec.profile.kind !== 'modbus') {
      throw new LangbiangError(
        'PROFILE_INVALID',
        `profile ${spec.profile.name} is a ${spec.profile.kind} profile; only Modbus devices can be simulated here`,
      );
    }
    if (!Number.isInteger(spec.unit) || spec.unit < 1 || spec.unit > 247) {
      throw new LangbiangError('USAGE', `simulated unit id must be 1-247, got ${spec.unit}`);
    }
    this.unit = spec.unit;
    this.profile = spec.profile;
    this.behaviour = spec.behaviour ?? 'normal';
    this.slowMs = spec.slowMs ?? 2000;
    this.exceptionCode = spec.exceptionCode ?? 4;
    const seed = spec.seed ?? spec.unit;
    const lossRate = spec.lossRate ?? 0;
    if (!(lossRate >= 0 && lossRate <= 1)) throw new LangbiangError('USAGE', `lossRate must be 0..1, got ${lossRate}`);
    this.lossRate = lossRate;
    this.lossState = (seed * 0x9e3779b1) >>> 0 || 1;
    const refuse = new Set(spec.refuse ?? []);
    for (const name of refuse) {
      if (!spec.profile.points.some((p) => p.name === name)) {
        throw new LangbiangError('UNKNOWN_POINT', `profile ${spec.profile.name} has no point "${name}" to refuse`);
      }
    }
    const start = now();
    for (const p of spec.profile.points) {
      this.points.set(p.name, p);
      if (refuse.has(p.name)) continue; // not in this variant: its registers are holes
      for (let a = p.address; a < p.address + pointWidth(p); a++) {
        const list = this.owners[p.function].get(a);
        if (list) list.push(p);
        else this.owners[p.function].set(a, [p]);
        this.image[p.function].set(a, 0);
      }
      const model = modelFor(spec.profile, p, seed, start);
      if (model) this.models.set(p.name, model);
    }
    for (const p of spec.profile.points) this.store(p, this.models.get(p.name)?.(start) ?? restingValue(p));
  }

  /** Should the answer to this request be lost on the line? (xorshift32: repeatable for a seed) */
  loseAnswer(): boolean {
    if (this.lossRate <= 0) return false;
    let x = this.lossState;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.lossState = x;
    if (x / 0x100000000 >= this.lossRate) return false;
    this.stats.lost++;
    return true;
  }

  private point(name: string): PointDef {
    const p = this.points.get(name);
    if (!p) throw new LangbiangError('UNKNOWN_POINT', `profile ${this.profile.name} has no point "${name}"`);
    return p;
  }

  private words(p: PointDef): number[] {
    const out: number[] = [];
    for (let a = p.address; a < p.address + pointWidth(p); a++) out.push(this.image[p.function].get(a) ?? 0);
    return out;
  }

  private store(p: PointDef, value: number | string): void {
    const current = p.type === 'bit' && p.function !== 'coil' && p.function !== 'discrete' ? this.words(p) : undefined;
    const words = encodePoint(p, value, current);
    words.forEach((w, i) => {
      this.image[p.function].set(p.address + i, w);
    });
  }

  /** Bring modelled points up to now (called before every read). */
  refresh(): void {
    const t = this.now();
    for (const [name, model] of this.models) {
      if (this.pinned.has(name)) continue;
      const p = this.point(name);
      try {
        this.store(p, model(t));
      } catch {
        // a model value the point's type cannot carry: keep the previous one
      }
    }
  }

  setValue(name: string, value: number | string): void {
    const p = this.point(name);
    this.store(p, value);
    this.pinned.add(name);
  }

  /**
   * Drives a point from a function from now on (e.g. a meter's current following the lamps it
   * feeds, wired by whoever knows how the simulated devices are connected).
   */
  setModel(name: string, model: ValueModel): void {
    this.point(name);
    this.models.set(name, model);
    this.pinned.delete(name);
  }

  getValue(name: string): number | string {
    this.refresh();
    const p = this.point(name);
    return decodePoint(p, this.words(p));
  }

  private covered(fn: RegisterFunction, address: number, count: number): boolean {
    for (let a = address; a < address + count; a++) if (!this.owners[fn].has(a)) return false;
    return true;
  }

  private writableAt(fn: RegisterFunction, address: number, count: number): boolean {
    for (let a = address; a < address + count; a++) {
      const owners = this.owners[fn].get(a);
      if (!owners?.some((p) => p.writable)) return false;
    }
    return true;
  }

  private pinAt(fn: RegisterFunction, address: number, count: number): void {
    for (let a = address; a < address + count; a++)
      for (const p of this.owners[fn].get(a) ?? []) this.pinned.add(p.name);
  }

  private exception(fc: number, code: number): Buffer {
    this.stats.exceptionsByCode[code] = (this.stats.exceptionsByCode[code] ?? 0) + 1;
    if (code === 2) this.stats.illegalAddressRequests++;
    return exceptionPdu(fc, code);
  }

  /** The answer PDU for a request PDU, as a healthy device gives it. */
  answer(pdu: Buffer): Buffer {
    const fc = pdu[0] ?? 0;
    if (pdu.length < 5 && fc >= 1 && fc <= 16) return this.exception(fc, 3);
    switch (fc) {
      case 1:
      case 2:
      case 3:
      case 4: {
        const fn = FC_CODES[fc] as RegisterFunction;
        const address = pdu.readUInt16BE(1);
        const count = pdu.readUInt16BE(3);
        const bits = fc <= 2;
        if (count < 1 || count > (bits ? 2000 : 125)) return this.exception(fc, 3);
        if (!this.covered(fn, address, count)) return this.exception(fc, 2);
        this.refresh();
        if (bits) {
          const bytes = Buffer.alloc(Math.ceil(count / 8));
          for (let i = 0; i < count; i++) if (this.image[fn].get(address + i)) bytes[i >> 3]! |= 1 << (i & 7);
          return Buffer.concat([Buffer.from([fc, bytes.length]), bytes]);
        }
        const out = Buffer.alloc(2 + count * 2);
        out[0] = fc;
        out[1] = count * 2;
        for (let i = 0; i < count; i++) out.writeUInt16BE((this.image[fn].get(address + i) ?? 0) & 0xffff, 2 + i * 2);
        return out;
      }
      case 5: {
        const address = pdu.readUInt16BE(1);
        const raw = pdu.readUInt16BE(3);
        if (raw !== 0xff00 && raw !== 0) return this.exception(fc, 3);
        if (!this.writableAt('coil', address, 1)) return this.exception(fc, 2);
        this.image.coil.set(address, raw ? 1 : 0);
        this.pinAt('coil', address, 1);
        this.stats.writes++;
        return Buffer.from(pdu.subarray(0, 5));
      }
      case 6: {
        const address = pdu.readUInt16BE(1);
        if (!this.writableAt('holding', address, 1)) return this.exception(fc, 2);
        this.image.holding.set(address, pdu.readUInt16BE(3));
        this.pinAt('holding', address, 1);
        this.stats.writes++;
        return Buffer.from(pdu.subarray(0, 5));
      }
      case 15:
      case 16: {
        if (pdu.length < 6) return this.exception(fc, 3);
        const address = pdu.readUInt16BE(1);
        const count = pdu.readUInt16BE(3);
        const byteCount = pdu[5] ?? 0;
        const fn: RegisterFunction = fc === 15 ? 'coil' : 'holding';
        const needBytes = fc === 15 ? Math.ceil(count / 8) : count * 2;
        if (count < 1 || count > (fc === 15 ? 1968 : 123) || byteCount !== needBytes || pdu.length < 6 + byteCount) {
          return this.exception(fc, 3);
        }
        if (!this.writableAt(fn, address, count)) return this.exception(fc, 2);
        for (let i = 0; i < count; i++) {
          const v = fc === 15 ? ((pdu[6 + (i >> 3)] ?? 0) >> (i & 7)) & 1 : pdu.readUInt16BE(6 + i * 2);
          this.image[fn].set(address + i, v);
        }
        this.pinAt(fn, address, count);
        this.stats.writes++;
        return Buffer.from(pdu.subarray(0, 5));
      }
      default:
        return this.exception(fc, 1);
    }
  }
}
