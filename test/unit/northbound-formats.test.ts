import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../cloud-sync/log.js';
import type { NorthboundDevice } from '../../cloud-sync/northbound/agent.js';
import type { LinkSession, NorthboundMessage } from '../../cloud-sync/northbound/link.js';
import { SparkplugFormat } from '../../cloud-sync/northbound/sparkplug/format.js';
import { ThingsBoardFormat } from '../../cloud-sync/northbound/thingsboard/format.js';
import type { CommandExecutor, CommandRequest } from '../../gateway/core/command.js';
import type { ReadingColumns } from '../../gateway/core/outbox.js';
import { protocDecode } from '../helpers/sparkplug-protoc.js';

// The formats alone, without a broker: what they publish for what arrives, and how their state
// moves only with what goes out.
const DEVICES: NorthboundDevice[] = [
  { id: 'relay-1', profile: 'relay', points: [{ name: 'relay_1', kind: 'boolean', writable: true }] },
];

function session(): LinkSession & { out: NorthboundMessage[] } {
  const out: NorthboundMessage[] = [];
  return { out, publish: (m) => out.push(m), subscribe: () => {} };
}

function columns(rows: { device: string; point: string; value: number | string | null; ts: number }[]): ReadingColumns {
  const keys: string[] = [];
  const series = rows.map((r) => {
    const k = `${r.device}/${r.point}`;
    if (!keys.includes(k)) keys.push(k);
    return keys.indexOf(k);
  });
  return {
    count: rows.length,
    seqs: rows.map((_, i) => i + 1),
    series,
    names: (id) => {
      const [device, point] = keys[id]!.split('/');
      return { device: device!, point: point!, unit: null };
    },
    ts: rows.map((r) => r.ts),
    quality: rows.map(() => 0),
    values: rows.map((r) => r.value),
  };
}

describe('ThingsBoard RPC handling', () => {
  const calls: CommandRequest[] = [];
  const executor: CommandExecutor = {
    execute: async (req) => {
      calls.push(req);
      return { id: req.id, ok: true, readBack: true, ts: 0 };
    },
  };
  const format = new ThingsBoardFormat({
    gatewayId: 'gw',
    devices: DEVICES,
    tokenFile: '/nonexistent',
    acceptRpc: true,
    commands: executor,
    now: () => 0,
    log: silentLogger,
  });
  const rpc = (body: unknown) => {
    const s = session();
    format.onMessage('v1/gateway/rpc', Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), s);
    return s.out.map((m) => JSON.parse(m.payload.toString()));
  };

  it('refuses an unknown method, bad params and an unknown device with their codes; ignores noise and its own replies', () => {
    expect(rpc({ device: 'gw/relay-1', data: { id: 1, method: 'reboot', params: {} } })).toEqual([
      { device: 'gw/relay-1', id: 1, data: expect.objectContaining({ ok: false, code: 'COMMAND_INVALID' }) },
    ]);
    expect(
      rpc({ device: 'gw/relay-1', data: { id: 2, method: 'write', params: { point: 'relay_1' } } })[0].data,
    ).toMatchObject({ ok: false, code: 'COMMAND_INVALID' });
    expect(
      rpc({ device: 'gw/nope', data: { id: 3, method: 'write', params: { point: 'x', value: 1 } } })[0].data,
    ).toMatchObject({
      ok: false,
      code: 'UNKNOWN_DEVICE',
    });
    expect(rpc('not json')).toEqual([]);
    expect(rpc({ device: 'gw/relay-1', id: 4, data: { ok: true } })).toEqual([]);
    expect(calls).toEqual([]);
  });

  it('hands a good write to the router with the device id and answers with its result', async () => {
    const s = session();
    format.onMessage(
      'v1/gateway/rpc',
      Buffer.from(
        JSON.stringify({
          device: 'gw/relay-1',
          data: { id: 9, method: 'write', params: { point: 'relay_1', value: true } },
        }),
      ),
      s,
    );
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).toEqual([
      expect.objectContaining({ device: 'relay-1', point: 'relay_1', value: true, source: 'mqtt' }),
    ]);
    expect(JSON.parse(s.out[0]!.payload.toString())).toEqual({
      device: 'gw/relay-1',
      id: 9,
      data: { ok: true, readBack: true },
    });
  });
});

describe('Sparkplug metrics not known at birth', () => {
  it('births a device again, with the new metric, before the data that uses it; nothing moves until commit', () => {
    const format = new SparkplugFormat({
      groupId: 'g',
      edgeNodeId: 'gw',
      devices: DEVICES,
      bdSeq: { next: () => 0, used: () => {} },
      acceptCommands: false,
      now: () => 1000,
      log: silentLogger,
    });
    const s = session();
    format.onSession(s);
    const cols = columns([
      { device: 'relay-1', point: 'relay_1', value: 1, ts: 10 },
      { device: 'relay-1', point: 'relay_9', value: 0, ts: 10 },
      { device: 'cabinet-1', point: 'mode', value: 'auto', ts: 11 },
    ]);
    // an encode that is not published (split for size) leaves seq and births as they were
    format.encodeReadings(cols, 3, false);
    const batch = format.encodeReadings(cols, 3, false);
    batch.commit();
    const all = [...s.out, ...batch.messages];
    const decoded = protocDecode(all.map((m) => m.payload));
    expect(all.map((m) => m.topic.split('/').slice(2).join('/'))).toEqual([
      'NBIRTH/gw',
      'DBIRTH/gw/relay-1',
      'DBIRTH/gw/relay-1',
      'DDATA/gw/relay-1',
      'DBIRTH/gw/cabinet-1',
      'DDATA/gw/cabinet-1',
    ]);
    expect(decoded.map((p) => p.seq)).toEqual([0, 1, 2, 3, 4, 5]);
    const rebirth = decoded[2]!.metrics.map((m) => [m.name, m.alias]);
    expect(rebirth).toEqual([
      ['relay_1', 1],
      ['relay_9', 2],
    ]);
    expect(decoded[3]!.metrics.map((m) => [m.alias, m.boolean_value ?? m.double_value])).toEqual([
      [1, true],
      [2, 0],
    ]);
    expect(decoded[4]!.metrics).toMatchObject([{ name: 'mode', alias: 3, datatype: 12 }]);
    expect(decoded[5]!.metrics).toMatchObject([{ alias: 3, string_value: 'auto', timestamp: 11 }]);
    // known now: the next batch is data only
    const next = format.encodeReadings(columns([{ device: 'relay-1', point: 'relay_9', value: 1, ts: 20 }]), 1, false);
    expect(next.messages.map((m) => m.topic)).toEqual(['spBv1.0/g/DDATA/gw/relay-1']);
  });
});
