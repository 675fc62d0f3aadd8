import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IClientOptions } from 'mqtt';
import type { CommandExecutor, CommandResult } from '../../../gateway/core/command.js';
import { describeError, LangbiangError } from '../../../gateway/core/errors.js';
import type { GatewayEventRecord, ReadingColumns } from '../../../gateway/core/outbox.js';
import { QUALITIES } from '../../../gateway/core/reading.js';
import type { SyncLogger } from '../../log.js';
import type { NorthboundDevice } from '../agent.js';
import type { EncodedBatch, LinkSession, NorthboundFormat, NorthboundMessage } from '../link.js';

/** The ThingsBoard gateway MQTT API's topics, and the gateway device's own telemetry topic. */
export const TB_TOPICS = {
  connect: 'v1/gateway/connect',
  disconnect: 'v1/gateway/disconnect',
  telemetry: 'v1/gateway/telemetry',
  attributes: 'v1/gateway/attributes',
  rpc: 'v1/gateway/rpc',
  ownTelemetry: 'v1/devices/me/telemetry',
} as const;

/** The one RPC method: `{"method": "write", "params": {"point": "brightness", "value": 128}}`. */
export const TB_WRITE_METHOD = 'write';
const COMMAND_DEADLINE_MS = 30_000;

export interface ThingsBoardFormatOptions {
  gatewayId: string;
  devices: NorthboundDevice[];
  /** file holding the ThingsBoard gateway device's access token (the MQTT user name) */
  tokenFile: string;
  /** server-side RPC reaches the command router only when true */
  acceptRpc: boolean;
  commands?: CommandExecutor;
  now: () => number;
  log: SyncLogger;
}

type TbValue = number | boolean | string;
type TbTelemetry = Record<string, { ts: number; values: Record<string, TbValue> }[]>;

/**
 * The ThingsBoard gateway MQTT API: each Langbiang device is a ThingsBoard device named
 * `{gatewayId}/{deviceId}`, connected on `v1/gateway/connect`, described on `v1/gateway/attributes`,
 * and fed on `v1/gateway/telemetry` with several devices and many `{ts, values}` per message.
 */
export class ThingsBoardFormat implements NorthboundFormat {
  private readonly byId = new Map<string, NorthboundDevice>();
  private readonly byName = new Map<string, string>();
  /** devices announced on v1/gateway/connect in this session */
  private connected = new Set<string>();

  constructor(private readonly o: ThingsBoardFormatOptions) {
    for (const d of o.devices) {
      this.byId.set(d.id, d);
      this.byName.set(this.nameOf(d.id), d.id);
    }
  }

  /** The ThingsBoard device name of a Langbiang device: unique across the city's gateways. */
  nameOf(deviceId: string): string {
    return `${this.o.gatewayId}/${deviceId}`;
  }

  connectOptions(common: IClientOptions): IClientOptions {
    const o: IClientOptions = {
      ...common,
      // the access token is the user name and the only credential (read at each connect, never logged)
      username: readToken(this.o.tokenFile),
      protocolVersion: 4,
      clean: true,
    };
    delete o.password;
    delete o.properties;
    delete o.autoAssignTopicAlias;
    return o;
  }

  onSession(s: LinkSession): void {
    this.connected = new Set();
    const attributes: Record<string, Record<string, string>> = {};
    for (const d of this.byId.values()) {
      s.publish(this.connectMessage(d.id));
      this.connected.add(d.id);
      const a: Record<string, string> = { gateway: this.o.gatewayId, device: d.id, profile: d.profile };
      if (d.name) a.name = d.name;
      if (d.zone) a.zone = d.zone;
      if (d.model) a.model = d.model;
      if (d.manufacturer) a.manufacturer = d.manufacturer;
      attributes[this.nameOf(d.id)] = a;
    }
    if (this.byId.size > 0) s.publish({ topic: TB_TOPICS.attributes, payload: json(attributes) });
    // subscribed even when RPC is off, so that a dashboard's RPC gets a clear refusal, not a timeout
    s.subscribe(TB_TOPICS.rpc);
  }

  encodeReadings(cols: ReadingColumns, count: number, _historical: boolean): EncodedBatch {
    // ThingsBoard has no "historical" flag: replayed backlog keeps its original ts, and a resend
    // overwrites the same (key, ts)
    const out: TbTelemetry = {};
    const last = new Map<string, { ts: number; values: Record<string, TbValue> }>();
    const fresh = new Set<string>();
    for (let i = 0; i < count; i++) {
      const { device, point } = cols.names(cols.series[i]!);
      if (!this.connected.has(device)) fresh.add(device);
      const name = this.nameOf(device);
      const ts = cols.ts[i]!;
      let entry = last.get(device);
      if (!entry || entry.ts !== ts) {
        entry = { ts, values: {} };
        last.set(device, entry);
        const list = out[name] ?? [];
        out[name] = list;
        list.push(entry);
      }
      const value = cols.values[i]!;
      const quality = QUALITIES[cols.quality[i]!] ?? 'decode_error';
      if (value !== null && quality === 'good') entry.values[point] = this.valueOf(device, point, value);
      // a failed read: no value (ThingsBoard keeps the last good one) and the reason under its own key
      else entry.values[`${point}_quality`] = quality;
    }
    const messages: NorthboundMessage[] = [...fresh].map((d) => this.connectMessage(d));
    messages.push({ topic: TB_TOPICS.telemetry, payload: json(out) });
    return {
      messages,
      commit: () => {
        for (const d of fresh) this.connected.add(d);
      },
    };
  }

  /** Gap events become telemetry of the gateway device itself (`gap_*` keys at the gap's time). */
  encodeEvents(events: GatewayEventRecord[]): EncodedBatch {
    const entries = events
      .filter((e) => e.kind === 'gap')
      .map((e) => {
        const d = e.data as { firstSeq?: number; lastSeq?: number; count?: number; reason?: string };
        return {
          ts: e.ts,
          values: {
            gap_first_seq: d.firstSeq ?? 0,
            gap_last_seq: d.lastSeq ?? 0,
            gap_count: d.count ?? 0,
            gap_reason: String(d.reason ?? ''),
          },
        };
      });
    const messages = entries.length ? [{ topic: TB_TOPICS.ownTelemetry, payload: json(entries) }] : [];
    return { messages, commit: () => {} };
  }

  onMessage(topic: string, payload: Buffer, s: LinkSession): void {
    if (topic !== TB_TOPICS.rpc) return;
    let req: { device?: unknown; data?: { id?: unknown; method?: unknown; params?: unknown } };
    try {
      req = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      this.o.log.warn({ err: describeError(err) }, 'ThingsBoard RPC is not JSON; ignored');
      return;
    }
    // our own replies come back on the same topic from a broker that echoes (ThingsBoard does not)
    if (req?.data && typeof req.data === 'object' && req.data.method === undefined) return;
    const name = typeof req?.device === 'string' ? req.device : null;
    const id = req?.data?.id;
    if (name === null || (typeof id !== 'number' && typeof id !== 'string')) {
      this.o.log.warn({}, 'ThingsBoard RPC without a device or an id; ignored');
      return;
    }
    const reply = (data: Record<string, unknown>) =>
      s.publish({ topic: TB_TOPICS.rpc, payload: json({ device: name, id, data }) });
    const refuse = (code: string, message: string) => reply({ ok: false, code, message });
    if (!this.o.acceptRpc || !this.o.commands) {
      this.o.log.warn({ device: name, id }, 'ThingsBoard RPC refused: RPC is off (sync.thingsboard.acceptRpc)');
      refuse('FORBIDDEN', 'RPC is turned off on this gateway (sync.thingsboard.acceptRpc)');
      return;
    }
    const device = this.byName.get(name);
    if (!device) {
      refuse('UNKNOWN_DEVICE', `no device ${name} on this gateway`);
      return;
    }
    const params = req.data?.params as { point?: unknown; value?: unknown } | undefined;
    if (req.data?.method !== TB_WRITE_METHOD) {
      refuse('COMMAND_INVALID', `unknown method ${JSON.stringify(req.data?.method)}; use "${TB_WRITE_METHOD}"`);
      return;
    }
    const value = params?.value;
    if (
      typeof params?.point !== 'string' ||
      !(typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string')
    ) {
      refuse('COMMAND_INVALID', 'params must be {"point": NAME, "value": number|boolean|string}');
      return;
    }
    this.o.commands
      .execute({
        id: `thingsboard-${randomUUID()}`,
        device,
        point: params.point,
        value,
        source: 'mqtt',
        actor: 'thingsboard',
        deadline: this.o.now() + COMMAND_DEADLINE_MS,
      })
      .then(
        (r: CommandResult) => {
          const data: Record<string, unknown> = { ok: r.ok };
          if (r.code) data.code = r.code;
          if (r.message) data.message = r.message;
          if (r.readBack !== undefined) data.readBack = r.readBack;
          reply(data);
        },
        (err) => refuse('DEVICE_ERROR', describeError(err)),
      );
  }

  farewell(): NorthboundMessage[] {
    return [...this.connected].map((d) => ({ topic: TB_TOPICS.disconnect, payload: json({ device: this.nameOf(d) }) }));
  }

  private connectMessage(deviceId: string): NorthboundMessage {
    const d = this.byId.get(deviceId);
    const body: Record<string, string> = { device: this.nameOf(deviceId) };
    if (d) body.type = d.profile;
    return { topic: TB_TOPICS.connect, payload: json(body) };
  }

  private valueOf(device: string, point: string, value: number | string): TbValue {
    const p = this.byId.get(device)?.points.find((x) => x.name === point);
    return p?.kind === 'boolean' && typeof value === 'number' ? value !== 0 : value;
  }
}

function json(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v));
}

/** The access token, read at each connect so it can be rotated; its value is never logged. */
function readToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new LangbiangError(
      'CONFIG_INVALID',
      `sync.thingsboard.tokenFile: cannot read ${file} (${describeError(err)})`,
    );
  }
  if (!token) throw new LangbiangError('CONFIG_INVALID', `sync.thingsboard.tokenFile: ${file} is empty`);
  return token;
}
