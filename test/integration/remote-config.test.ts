import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { makeCityKey } from '../helpers/city-key.js';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Listener, listen } from '../helpers/mqtt-listener.js';
import { freePort } from '../helpers/ports.js';

// The city changes a running gateway's config over MQTT: a good change is kept after its watch, a
// change that breaks a bus is rolled back by the gateway itself, and the buffer never notices.
const GW = 'dl-gw-remote';
/** the city's control key, pinned in the data directory; its name is the config event's actor */
const city = makeCityKey('city-test');

describe('remote config over MQTT (real gateway, real Mosquitto, Modbus TCP simulator)', () => {
  let broker: Mosquitto;
  let sim: ModbusSimulator;
  let dir: string;
  let config: string;
  let httpPort: number;
  let gw: RunningCli | null = null;
  let l: Listener;

  const base = (extra = '') => `gateway: { id: ${GW}, dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: tcp, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 500ms }
${extra.includes('BUS') ? extra.split('DEV')[0]!.replace('BUS', '') : ''}devices:
  - { id: climate-1, profile: xy-md02, bus: tcp, unit: 1, interval: 200ms }
${extra.includes('DEV') ? extra.split('DEV')[1] : ''}storage: { batchMaxDelay: 100ms }
panel: { port: ${httpPort}, host: 127.0.0.1 }
sync: { url: "${broker.url}", batchMaxDelay: 200ms, remoteConfig: { watch: 2s } }
`;
  const configEvents = () => l.events.flatMap((b) => b.events).filter((e) => e.kind === 'config');
  // one signed message per version: publishing a version again sends the same bytes, as a broker
  // redelivering a retained message does
  const signed = new Map<number, Buffer>();
  const publish = (version: number, text: string) => {
    if (!signed.has(version)) signed.set(version, city.signConfig(GW, { v: 1, version, config: text }));
    return l.client.publishAsync(`langbiang/v1/${GW}/config`, signed.get(version)!, { qos: 1 });
  };
  const devicesSeen = (sinceSeq: number) =>
    new Set(
      l.telemetry.flatMap((b) =>
        b.readings.filter((r) => r.seq > sinceSeq && r.quality === 'good').map((r) => r.device),
      ),
    );

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lb-remote-'));
    broker = await startMosquitto();
    sim = await ModbusSimulator.tcp({
      units: [
        { unit: 1, profile: loadProfile('xy-md02') },
        { unit: 2, profile: loadProfile('xy-md02') },
      ],
    });
    httpPort = await freePort();
    config = join(dir, 'gateway.yaml');
    writeFileSync(config, base());
    city.pin(join(dir, 'data'));
    l = await listen(broker.url, GW);
  });

  afterAll(async () => {
    gw?.child.kill('SIGKILL');
    await l?.close();
    await sim?.close();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies a good config, rolls back one that breaks a bus, and the buffer goes on untouched', async () => {
    gw = startCli(['start', '--config', config]);
    await gw.waitFor('connected to the broker', 20_000);
    await waitUntil(() => l.seqs().length >= 5, 15_000, 'first readings at the city');

    // v1: a second probe on the bus — answers, so it is kept after the 2 s watch
    const v1 = base('DEV  - { id: climate-2, profile: xy-md02, bus: tcp, unit: 2, interval: 200ms }\n');
    await publish(1, v1);
    await waitUntil(() => configEvents().find((e) => e.data.version === 1), 20_000, 'the v1 config event');
    const e1 = configEvents().find((e) => e.data.version === 1)!;
    expect(e1.data, gw.output().slice(-3000)).toMatchObject({
      outcome: 'applied',
      source: 'mqtt',
      actor: 'city-test',
      problems: [],
    });
    const afterV1 = Math.max(...l.seqs());
    await waitUntil(() => devicesSeen(afterV1).has('climate-2'), 10_000, 'climate-2 readings after v1');

    // v2: a serial bus whose port does not exist — rolled back by the gateway itself
    const v2 = base(
      'BUS  - { id: rs485-x, type: modbus-rtu, port: /dev/ttyLANGBIANG-NOPE, baudRate: 9600 }\nDEV  - { id: climate-2, profile: xy-md02, bus: tcp, unit: 2, interval: 200ms }\n  - { id: soil-x, profile: comwintop-cwt-soil, bus: rs485-x, unit: 1, interval: 1s }\n',
    );
    await publish(2, v2);
    await waitUntil(() => configEvents().find((e) => e.data.version === 2), 25_000, 'the v2 config event');
    const e2 = configEvents().find((e) => e.data.version === 2)!;
    expect(e2.data.outcome, gw.output().slice(-3000)).toBe('rolled_back');
    expect((e2.data.problems as string[]).join('; ')).toMatch(/rs485-x|soil-x/);
    // v1 runs again: both probes answer
    const afterV2 = Math.max(...l.seqs());
    await waitUntil(
      () => devicesSeen(afterV2).has('climate-2') && devicesSeen(afterV2).has('climate-1'),
      15_000,
      'v1 devices after the rollback',
    );

    // the same versions again are not applied twice
    await publish(2, v2);
    await publish(1, v1);
    // a refused one: a config that tries to move the store
    await publish(3, base().replace(`dataDir: ${dir}/data`, `dataDir: ${dir}/elsewhere`));
    await waitUntil(() => configEvents().find((e) => e.data.version === 3), 10_000, 'the v3 config event');
    expect(configEvents().find((e) => e.data.version === 3)!.data).toMatchObject({ outcome: 'refused' });
    expect((configEvents().find((e) => e.data.version === 3)!.data.problems as string[])[0]).toMatch(
      /^gateway\.dataDir: cannot change/,
    );
    // v2 again is the retained message redelivered: ignored; v1 again is a replay of an older
    // message: refused with an event, and neither is applied
    expect(configEvents().map((e) => [e.data.version, e.data.outcome])).toEqual([
      [1, 'applied'],
      [2, 'rolled_back'],
      [1, 'refused'],
      [3, 'refused'],
    ]);
    expect(configEvents()[2]!.data).toMatchObject({ reason: 'replayed', actor: 'city-test' });

    // the buffer: one epoch, seqs 1..N with no hole, no gap event, across three restarts of the parts
    const last = Math.max(...l.seqs());
    await waitUntil(() => new Set(l.seqs()).size >= last, 10_000, 'every seq up to the last at the city');
    const epochs = new Set(l.telemetry.map((b) => b.epoch));
    expect(epochs.size).toBe(1);
    const seqs = [...new Set(l.seqs())].sort((a, b) => a - b);
    expect(seqs[0]).toBe(1);
    expect(seqs.length).toBe(seqs.at(-1));
    expect(l.events.flatMap((b) => b.events).filter((e) => e.kind === 'gap')).toEqual([]);

    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    const exp = await runCli(['export', '--data-dir', join(dir, 'data'), '--format', 'jsonl']);
    expect(exp.code).toBe(0);
    const stored = exp.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { seq: number }).seq);
    expect(stored).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1));
    expect(stored.length).toBeGreaterThanOrEqual(last);

    // the kept config survives a restart (the file in /etc was not rewritten: it is still v0)
    expect(readFileSync(config, 'utf8')).not.toContain('climate-2');
    gw = startCli(['start', '--config', config]);
    await gw.waitFor('starting with the config applied by a config change', 15_000);
    await gw.waitFor('connected to the broker', 15_000);
    const afterRestart = Math.max(...l.seqs());
    await waitUntil(() => devicesSeen(afterRestart).has('climate-2'), 10_000, 'climate-2 after the restart');
    expect(l.telemetry.at(-1)!.epoch).toBe([...epochs][0]);

    // a technician's edit of the file wins over the applied config
    gw.child.kill('SIGTERM');
    await gw.exited;
    writeFileSync(config, `${base()}# edited on site\n`);
    gw = startCli(['start', '--config', config]);
    await gw.waitFor('the config file was edited after a config change was applied; the file wins', 15_000);
    gw.child.kill('SIGTERM');
    await gw.exited;
  }, 120_000);
});
