import { randomUUID } from 'node:crypto';
import type { IClientOptions } from 'mqtt';
import type { CommandExecutor } from '../../../gateway/core/command.js';
import { describeError } from '../../../gateway/core/errors.js';
import type { GatewayEventRecord, ReadingColumns } from '../../../gateway/core/outbox.js';
import { QUALITIES } from '../../../gateway/core/reading.js';
import type { SyncLogger } from '../../log.js';
import type { NorthboundDevice, NorthboundPoint } from '../agent.js';
import type { EncodedBatch, LinkSession, NorthboundFormat, NorthboundMessage } from '../link.js';
import { DataType, decodePayload, encodePayload, type SpMetric, type SpPayload } from './codec.js';

/** Sparkplug B 3.0 topic namespace. */
export const SPARKPLUG_NAMESPACE = 'spBv1.0';
export const REBIRTH_METRIC = 'Node Control/Rebirth';
export const BDSEQ_METRIC = 'bdSeq';
/** Node metrics that carry the store's gap events (born null in NBIRTH, set in NDATA). */
export const GAP_METRICS = {
  firstSeq: 'Store/Gap first seq',
  lastSeq: 'Store/Gap last seq',
  count: 'Store/Gap count',
  reason: 'Store/Gap reason',
} as const;
/** How long a DCMD write may wait for the bus before the router refuses it. */
const COMMAND_DEADLINE_MS = 30_000;

/** Where the bdSeq lives between restarts: the next value to use. */
export interface BdSeqStore {
  next(): number;
  /** the value just used: the next connection uses the one after (mod 256), durably */
  used(bdSeq: number): void;
}

export interface SparkplugFormatOptions {
  groupId: string;
  /** = gateway.id */
  edgeNodeId: string;
  devices: NorthboundDevice[];
  bdSeq: BdSeqStore;
  /** DCMD writes go to the command router only when the operator turned this on */
  acceptCommands: boolean;
  commands?: CommandExecutor;
  now: () => number;
  log: SyncLogger;
}

interface MetricState {
  alias: number;
  kind: NorthboundPoint['kind'];
  unit?: string;
  writable: boolean;
}

interface DeviceState {
  metrics: Map<string, MetricState>;
}

/**
 * Sparkplug B for one edge node: NBIRTH (bdSeq, Rebirth, the gap metrics) and one DBIRTH per
 * device with every metric before any DDATA; DDATA with aliases, per-reading timestamps and the
 * historical flag on backlog; seq 0–255 wrapping over every message of the node; NDEATH with the
 * same bdSeq as the MQTT will and on a clean stop. Rebirth requests are honoured; DCMD writes go
 * through the command router only when `acceptCommands` is set.
 */
export class SparkplugFormat implements NorthboundFormat {
  private readonly devices = new Map<string, DeviceState>();
  private nextAlias = 1;
  private seq = 0;
  private bdSeq = 0;
  /** devices whose DBIRTH (with every metric they have now) went out in this session */
  private born = new Set<string>();
  private readonly topicRoot: string;

  constructor(private readonly o: SparkplugFormatOptions) {
    this.topicRoot = `${SPARKPLUG_NAMESPACE}/${o.groupId}`;
    for (const d of o.devices) {
      const state = this.deviceState(d.id);
      for (const p of d.points) this.addMetric(state, p.name, p.kind, p.unit, p.writable);
    }
  }

  topic(type: 'NBIRTH' | 'NDEATH' | 'NDATA' | 'NCMD'): string;
  topic(type: 'DBIRTH' | 'DDATA' | 'DCMD' | 'DDEATH', device: string): string;
  topic(type: string, device?: string): string {
    const base = `${this.topicRoot}/${type}/${this.o.edgeNodeId}`;
    return device === undefined ? base : `${base}/${device}`;
  }

  /** The bdSeq of the current (or last) connection. */
  currentBdSeq(): number {
    return this.bdSeq;
  }

  connectOptions(common: IClientOptions): IClientOptions {
    // A new bdSeq for every CONNECT, on disk before the will names it: after a crash and restart
    // the old session's NDEATH must not carry the new session's bdSeq.
    this.bdSeq = this.o.bdSeq.next() % 256;
    this.o.bdSeq.used(this.bdSeq);
    const o: IClientOptions = {
      ...common,
      // Sparkplug edge nodes use a clean session: the births re-establish everything
      protocolVersion: 4,
      clean: true,
      will: { topic: this.topic('NDEATH'), payload: this.deathPayload(false), qos: 1, retain: false },
    };
    delete o.properties;
    delete o.autoAssignTopicAlias;
    return o;
  }

  onSession(s: LinkSession): void {
    // subscribed before the births, so a host's reaction to NBIRTH (a rebirth request) is not lost
    s.subscribe(this.topic('NCMD'));
    s.subscribe(`${this.topicRoot}/DCMD/${this.o.edgeNodeId}/+`);
    this.birth(s);
  }

  encodeReadings(cols: ReadingColumns, count: number, historical: boolean): EncodedBatch {
    let seq = this.seq;
    const nextSeq = () => {
      const s = seq;
      seq = (seq + 1) % 256;
      return s;
    };
    const newMetrics: { device: string; point: string; kind: NorthboundPoint['kind']; unit?: string }[] = [];
    const byDevice = new Map<string, SpMetric[]>();
    const seen = new Map<string, Set<string>>();
    for (let i = 0; i < count; i++) {
      const { device, point, unit } = cols.names(cols.series[i]!);
      const value = cols.values[i]!;
      let known = this.devices.get(device)?.metrics.get(point);
      if (!known) {
        const pending = seen.get(device) ?? new Set<string>();
        seen.set(device, pending);
        const kind: NorthboundPoint['kind'] = typeof value === 'string' ? 'string' : 'number';
        if (!pending.has(point)) {
          pending.add(point);
          newMetrics.push({ device, point, kind, unit: unit ?? undefined });
        }
        known = { alias: -1, kind, writable: false };
      }
      let list = byDevice.get(device);
      if (!list) {
        list = [];
        byDevice.set(device, list);
      }
      list.push({
        name: point,
        ...this.valueOf(known, value, QUALITIES[cols.quality[i]!] ?? 'decode_error'),
        timestamp: cols.ts[i]!,
      });
      if (historical) list[list.length - 1]!.isHistorical = true;
    }
    // Metrics seen for the first time are born (a new DBIRTH of their device) before their data.
    const shadow = new Map<string, DeviceState>();
    let aliasNext = this.nextAlias;
    for (const m of newMetrics) {
      let st = shadow.get(m.device);
      if (!st) {
        st = { metrics: new Map(this.devices.get(m.device)?.metrics) };
        shadow.set(m.device, st);
      }
      st.metrics.set(m.point, { alias: aliasNext++, kind: m.kind, unit: m.unit, writable: false });
    }
    const bornNow = new Set<string>();
    const messages: NorthboundMessage[] = [];
    const now = this.o.now();
    for (const [device, metrics] of byDevice) {
      const state = shadow.get(device) ?? this.devices.get(device)!;
      if (shadow.has(device) || !this.born.has(device)) {
        messages.push({ topic: this.topic('DBIRTH', device), payload: this.deviceBirth(state, now, nextSeq()) });
        bornNow.add(device);
      }
      for (const m of metrics) {
        // after the birth, data names a metric by its alias only
        m.alias = state.metrics.get(m.name!)!.alias;
        delete m.name;
      }
      messages.push({
        topic: this.topic('DDATA', device),
        payload: encodePayload({ timestamp: now, seq: nextSeq(), metrics }),
      });
    }
    return {
      messages,
      commit: () => {
        this.seq = seq;
        this.nextAlias = aliasNext;
        for (const [device, st] of shadow) this.devices.set(device, st);
        for (const d of bornNow) this.born.add(d);
      },
    };
  }

  /** Gap events as NDATA of the gap metrics; other events have no Sparkplug carrier. */
  encodeEvents(events: GatewayEventRecord[]): EncodedBatch {
    const metrics: SpMetric[] = [];
    for (const e of events) {
      if (e.kind !== 'gap') continue;
      const d = e.data as { firstSeq?: number; lastSeq?: number; count?: number; reason?: string };
      const ts = e.ts;
      metrics.push(
        { name: GAP_METRICS.firstSeq, timestamp: ts, datatype: DataType.UInt64, longValue: d.firstSeq ?? 0 },
        { name: GAP_METRICS.lastSeq, timestamp: ts, datatype: DataType.UInt64, longValue: d.lastSeq ?? 0 },
        { name: GAP_METRICS.count, timestamp: ts, datatype: DataType.UInt64, longValue: d.count ?? 0 },
        { name: GAP_METRICS.reason, timestamp: ts, datatype: DataType.String, stringValue: String(d.reason ?? '') },
      );
    }
    if (metrics.length === 0) return { messages: [], commit: () => {} };
    const seq = this.seq;
    return {
      messages: [{ topic: this.topic('NDATA'), payload: encodePayload({ timestamp: this.o.now(), seq, metrics }) }],
      commit: () => {
        this.seq = (seq + 1) % 256;
      },
    };
  }

  onMessage(topic: string, payload: Buffer, s: LinkSession): void {
    const parts = topic.split('/');
    if (parts[0] !== SPARKPLUG_NAMESPACE || parts[1] !== this.o.groupId || parts[3] !== this.o.edgeNodeId) return;
    let msg: SpPayload;
    try {
      msg = decodePayload(payload);
    } catch (err) {
      this.o.log.warn({ topic, err: describeError(err) }, 'Sparkplug command not decodable; ignored');
      return;
    }
    if (parts[2] === 'NCMD') this.nodeCommand(msg, s);
    else if (parts[2] === 'DCMD' && parts[4]) this.deviceCommand(parts[4], msg);
  }

  farewell(): NorthboundMessage[] {
    return [{ topic: this.topic('NDEATH'), payload: this.deathPayload(true) }];
  }

  // ---- births and deaths ------------------------------------------------------------------------

  private birth(s: LinkSession): void {
    const now = this.o.now();
    this.seq = 0;
    this.born = new Set();
    const gapNull = (name: string, datatype: number): SpMetric => ({ name, timestamp: now, datatype, isNull: true });
    s.publish({
      topic: this.topic('NBIRTH'),
      payload: encodePayload({
        timestamp: now,
        seq: this.takeSeq(),
        metrics: [
          { name: BDSEQ_METRIC, timestamp: now, datatype: DataType.Int64, longValue: this.bdSeq },
          { name: REBIRTH_METRIC, timestamp: now, datatype: DataType.Boolean, booleanValue: false },
          gapNull(GAP_METRICS.firstSeq, DataType.UInt64),
          gapNull(GAP_METRICS.lastSeq, DataType.UInt64),
          gapNull(GAP_METRICS.count, DataType.UInt64),
          gapNull(GAP_METRICS.reason, DataType.String),
        ],
      }),
    });
    for (const [id, state] of this.devices) {
      s.publish({ topic: this.topic('DBIRTH', id), payload: this.deviceBirth(state, now, this.takeSeq()) });
      this.born.add(id);
    }
  }

  private deviceBirth(state: DeviceState, now: number, seq: number): Buffer {
    const metrics: SpMetric[] = [];
    for (const [name, m] of state.metrics) {
      const keys = ['readOnly'];
      const values: { type: number; stringValue?: string; booleanValue?: boolean }[] = [
        { type: DataType.Boolean, booleanValue: !m.writable },
      ];
      if (m.unit) {
        keys.unshift('engUnit');
        values.unshift({ type: DataType.String, stringValue: m.unit });
      }
      // the birth names the metric, ties it to its alias and types it; the value comes with DDATA
      metrics.push({
        name,
        alias: m.alias,
        timestamp: now,
        datatype: datatypeOf(m.kind),
        isNull: true,
        properties: { keys, values },
      });
    }
    return encodePayload({ timestamp: now, seq, metrics });
  }

  private deathPayload(withTimestamp: boolean): Buffer {
    const p: SpPayload = { metrics: [{ name: BDSEQ_METRIC, datatype: DataType.Int64, longValue: this.bdSeq }] };
    if (withTimestamp) p.timestamp = this.o.now();
    return encodePayload(p);
  }

  private takeSeq(): number {
    const s = this.seq;
    this.seq = (this.seq + 1) % 256;
    return s;
  }

  // ---- commands ---------------------------------------------------------------------------------

  private nodeCommand(msg: SpPayload, s: LinkSession): void {
    for (const m of msg.metrics) {
      if (m.name === REBIRTH_METRIC && m.booleanValue === true) {
        this.o.log.info({ bdSeq: this.bdSeq }, 'Sparkplug rebirth requested; publishing NBIRTH and DBIRTHs again');
        this.birth(s);
      } else {
        this.o.log.warn({ metric: m.name ?? m.alias }, 'Sparkplug NCMD for a metric that cannot be written; ignored');
      }
    }
  }

  private deviceCommand(device: string, msg: SpPayload): void {
    if (!this.o.acceptCommands || !this.o.commands) {
      this.o.log.warn(
        { device, metrics: msg.metrics.length },
        'Sparkplug DCMD refused: writes from the Sparkplug host are off (sync.sparkplug.acceptCommands)',
      );
      return;
    }
    const state = this.devices.get(device);
    for (const m of msg.metrics) {
      const name =
        m.name ?? (state ? [...state.metrics].find(([, st]) => st.alias === m.alias)?.[0] : undefined) ?? undefined;
      const value = m.booleanValue ?? m.doubleValue ?? m.floatValue ?? m.longValue ?? m.intValue ?? m.stringValue;
      if (!name || value === undefined) {
        this.o.log.warn({ device, alias: m.alias }, 'Sparkplug DCMD metric without a known name or a value; ignored');
        continue;
      }
      const id = `sparkplug-${randomUUID()}`;
      const executor = this.o.commands;
      executor
        .execute({
          id,
          device,
          point: name,
          value,
          source: 'mqtt',
          actor: `sparkplug:${this.o.groupId}`,
          deadline: this.o.now() + COMMAND_DEADLINE_MS,
        })
        .then(
          (r) =>
            this.o.log.info(
              { id, device, point: name, ok: r.ok, code: r.code, message: r.message },
              'Sparkplug DCMD write done',
            ),
          (err) =>
            this.o.log.error({ id, device, point: name, err: describeError(err) }, 'Sparkplug DCMD write failed'),
        );
    }
  }

  // ---- metrics ----------------------------------------------------------------------------------

  private deviceState(id: string): DeviceState {
    let st = this.devices.get(id);
    if (!st) {
      st = { metrics: new Map() };
      this.devices.set(id, st);
    }
    return st;
  }

  private addMetric(
    state: DeviceState,
    name: string,
    kind: NorthboundPoint['kind'],
    unit: string | undefined,
    writable: boolean,
  ): void {
    if (state.metrics.has(name)) return;
    state.metrics.set(name, { alias: this.nextAlias++, kind, unit, writable });
  }

  /** A DDATA metric's value; the datatype was given at birth, so it is not repeated. */
  private valueOf(m: Pick<MetricState, 'kind'>, value: number | string | null, quality: string): SpMetric {
    if (value === null || quality !== 'good') {
      // a reading that failed still goes out: null, with the reason beside it
      return {
        isNull: true,
        properties: { keys: ['quality'], values: [{ type: DataType.String, stringValue: quality }] },
      };
    }
    if (m.kind === 'boolean') return { booleanValue: Number(value) !== 0 };
    if (m.kind === 'string' || typeof value === 'string') return { stringValue: String(value) };
    return { doubleValue: value };
  }
}

function datatypeOf(kind: NorthboundPoint['kind']): number {
  return kind === 'boolean' ? DataType.Boolean : kind === 'string' ? DataType.String : DataType.Double;
}
