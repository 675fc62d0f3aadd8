import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvents } from '../../cloud-sync/protocol/events.js';
import { encodeTelemetry, NATIVE_VERSION } from '../../cloud-sync/protocol/native.js';
import type { TelemetryBatch } from '../../cloud-sync/protocol/types.js';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, makeCertificates, startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';

/**
 * Issue 18, the receiver in production: a health endpoint for the container's HEALTHCHECK,
 * `export --gateway` (device ids repeat across gateways), `export --events`, and a clean
 * shutdown message. Two gateways publish in the native encoding to a real Mosquitto; the real
 * receiver CLI stores them in a SQLite file; the real export CLI reads it.
 */
const T0 = Date.parse('2026-03-01T08:00:00.000Z');

function batch(gateway: string, epoch: string, values: number[]): TelemetryBatch {
  return {
    v: NATIVE_VERSION,
    gateway,
    epoch,
    firstSeq: 1,
    lastSeq: values.length,
    readings: values.map((value, i) => ({
      seq: i + 1,
      device: 'soil-a1',
      point: 'moisture',
      ts: T0 + i * 1000,
      value,
      unit: '%',
      quality: 'good',
    })),
  };
}

describe('the receiver in production', () => {
  let broker: Mosquitto;
  let dir: string;
  let db: string;
  let healthPort: number;
  let receiver: RunningCli;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'langbiang-receiver-prod-'));
    db = join(dir, 'city.db');
    broker = await startMosquitto();
    healthPort = await freePort();
    receiver = startCli([
      'receiver',
      '--broker',
      broker.url,
      '--db',
      db,
      '--exclusive',
      '--stats-interval',
      '0',
      '--health-port',
      String(healthPort),
    ]);
    await receiver.waitFor('receiver subscribed', 20_000);
    const pub = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'two-gateways' });
    const epA = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    const epB = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
    await pub.publishAsync(
      'langbiang/v1/dl-gw-0001/telemetry',
      encodeTelemetry(batch('dl-gw-0001', epA, [31.5, 31.4])),
      {
        qos: 1,
      },
    );
    await pub.publishAsync('langbiang/v1/dl-gw-0002/telemetry', encodeTelemetry(batch('dl-gw-0002', epB, [12.25])), {
      qos: 1,
    });
    await pub.publishAsync(
      'langbiang/v1/dl-gw-0002/events',
      encodeEvents({
        v: 1,
        gateway: 'dl-gw-0002',
        epoch: epB,
        events: [
          { id: 1, kind: 'gap', ts: T0 + 5000, data: { firstSeq: 10, lastSeq: 19, count: 10, reason: 'byte_cap' } },
          {
            id: 2,
            kind: 'command',
            ts: T0 + 6000,
            data: { source: 'panel', actor: 'lan', device: 'valves', point: 'relay_1', value: true },
          },
        ],
      }),
      { qos: 1 },
    );
    await pub.endAsync();
  }, 60_000);

  afterAll(async () => {
    receiver?.child.kill('SIGKILL');
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const exportCsv = async (args: string[]) => {
    const r = await runCli(['export', '--receiver-db', db, ...args]);
    return r;
  };

  it('/healthz answers 200 ok while connected', async () => {
    const res = await fetch(`http://127.0.0.1:${healthPort}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', problems: [], connected: true });
  });

  it('export --gateway picks one gateway although the device ids repeat', async () => {
    const all = await waitUntil(
      async () => {
        const r = await exportCsv(['--format', 'csv']);
        return r.stdout.trim().split('\n').length === 4 ? r : undefined;
      },
      10_000,
      'three readings at the receiver',
    );
    expect(all.stdout.split('\n')[0]).toBe('gateway,seq,device,point,ts,value,unit,quality');
    const one = await exportCsv(['--gateway', 'dl-gw-0002', '--device', 'soil-a1']);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toBe(
      'gateway,seq,device,point,ts,value,unit,quality\ndl-gw-0002,1,soil-a1,moisture,2026-03-01T08:00:00.000Z,12.25,%,good\n',
    );
  });

  it('a gateway or device it never heard of is a sentence and exit 1, not an empty file', async () => {
    const g = await exportCsv(['--gateway', 'dl-gw-0099']);
    expect(g.code).toBe(1);
    expect(g.stdout).toBe('');
    expect(g.stderr).toBe(
      'langbiang: --gateway dl-gw-0099: this receiver database has no readings from that gateway\n',
    );
    const d = await exportCsv(['--gateway', 'dl-gw-0001', '--device', 'nope']);
    expect(d.code).toBe(1);
    expect(d.stderr).toBe(
      'langbiang: --device nope: this receiver database has no readings of that device from gateway dl-gw-0001 (device ids repeat across gateways: add --gateway to pick one)\n',
    );
  });

  it('export --events gives the events, as CSV and JSON lines, filtered by gateway and kind', async () => {
    const csv = await waitUntil(
      async () => {
        const r = await exportCsv(['--events']);
        return r.stdout.trim().split('\n').length === 3 ? r : undefined;
      },
      10_000,
      'two events at the receiver',
    );
    expect(csv.stdout).toBe(
      [
        'gateway,epoch,id,kind,ts,data',
        'dl-gw-0002,bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb,1,gap,2026-03-01T08:00:05.000Z,"{""firstSeq"":10,""lastSeq"":19,""count"":10,""reason"":""byte_cap""}"',
        'dl-gw-0002,bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb,2,command,2026-03-01T08:00:06.000Z,"{""source"":""panel"",""actor"":""lan"",""device"":""valves"",""point"":""relay_1"",""value"":true}"',
        '',
      ].join('\n'),
    );
    const gaps = await exportCsv(['--events', '--kind', 'gap', '--gateway', 'dl-gw-0002', '--format', 'jsonl']);
    expect(
      gaps.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      {
        gateway: 'dl-gw-0002',
        epoch: 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',
        id: 1,
        kind: 'gap',
        ts: '2026-03-01T08:00:05.000Z',
        data: { firstSeq: 10, lastSeq: 19, count: 10, reason: 'byte_cap' },
      },
    ]);
  });

  it('/healthz says degraded (503) while the broker is away', async () => {
    await broker.stop();
    try {
      const res = await waitUntil(
        async () => {
          const r = await fetch(`http://127.0.0.1:${healthPort}/healthz`);
          return r.status === 503 ? r : undefined;
        },
        10_000,
        'a 503 from the receiver',
      );
      const body = (await res.json()) as { status: string; problems: string[] };
      expect(body.status).toBe('degraded');
      expect(body.problems).toEqual([`not connected to the broker ${broker.url} (reconnecting with backoff)`]);
      // the log line may still be in the logger's buffer when the 503 is seen
      await receiver.waitFor('receiver lost the broker; reconnecting', 5000);
    } finally {
      await broker.start();
    }
    await receiver.waitFor(/receiver subscribed[\s\S]*receiver subscribed/, 20_000);
  });

  it('a broken TLS file is refused at start, naming its flag', async () => {
    const tlsDir = join(dir, 'tls');
    mkdirSync(tlsDir);
    const certs = makeCertificates(tlsDir);
    const pem = readFileSync(certs.ca, 'utf8').split('\n');
    pem[2] = 'not base64!';
    const broken = join(tlsDir, 'broken-ca.pem');
    writeFileSync(broken, pem.join('\n'));
    const r = await runCli([
      'receiver',
      '--broker',
      'mqtts://127.0.0.1:8883',
      '--db',
      join(dir, 'x.db'),
      '--ca',
      broken,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^langbiang: --ca ${broken} is not a valid PEM certificate \\(.+\\)\n$`));
    const swapped = await runCli([
      'receiver',
      '--broker',
      'mqtts://127.0.0.1:8883',
      '--db',
      join(dir, 'x.db'),
      '--cert',
      certs.key,
      '--key',
      certs.cert,
    ]);
    expect(swapped.code).toBe(1);
    expect(swapped.stderr).toContain(
      `langbiang: --cert ${certs.key} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line; it holds a private key — swapped with --key?)\n--key ${certs.cert} is not a PEM private key (`,
    );
  });

  it('SIGTERM is a clean shutdown, not a lost broker', async () => {
    const before = receiver.output().split('receiver lost the broker').length;
    receiver.child.kill('SIGTERM');
    expect(await receiver.exited).toBe(0);
    const out = receiver.output();
    expect(out).toContain(
      'receiver stopping (SIGTERM): finishing the message in hand, then disconnecting; the broker keeps the session',
    );
    expect(out).toContain('"msg":"receiver stopped"');
    expect(out.split('receiver lost the broker').length).toBe(before);
  });
});
