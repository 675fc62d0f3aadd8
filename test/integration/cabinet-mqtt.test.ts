import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { levelToPoint } from '../../gateway/cabinet/levels.js';
import { linkCabinetLoads } from '../../gateway/cabinet/sim-load.js';
import { formatProblems, parseConfigText } from '../../gateway/config/index.js';
import { loadProfiles } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { makeCityKey } from '../helpers/city-key.js';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Listener, listen } from '../helpers/mqtt-listener.js';
import { freePort } from '../helpers/ports.js';

// A real gateway process with a lamp cabinet on simulated Modbus TCP devices, a real Mosquitto,
// and a plain MQTT client standing in for the city.
const GW = 'dl-cab-e2e';
const DALI = 10;
const RELAYS = 11;
const METER = 12;
/** the city's control key, pinned in the gateway's data directory; its name is the audit actor */
const city = makeCityKey('ops-dalat');

describe('commands from the city over MQTT to a lamp cabinet', () => {
  let broker: Mosquitto;
  let sim: ModbusSimulator;
  let dir: string;
  let httpPort: number;
  let gw: RunningCli;
  let l: Listener;
  const cmdTopic = `langbiang/v1/${GW}/cmd`;

  const resultFor = (id: string) => waitUntil(() => l.results.find((r) => r.id === id), 10_000, `cmd/result for ${id}`);
  /** objects are signed by the city key; strings and bytes go out as they are (unsigned) */
  const send = (body: unknown) =>
    l.client.publishAsync(
      cmdTopic,
      typeof body === 'string' || Buffer.isBuffer(body) ? body : city.signCommand(GW, body as Record<string, unknown>),
      { qos: 1 },
    );
  const health = async () =>
    (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()) as { status: string; lastSeq: number };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lb-cab-mqtt-'));
    broker = await startMosquitto();
    const profiles = loadProfiles();
    sim = await ModbusSimulator.tcp({
      units: [
        { unit: DALI, profile: profiles.get('ecodim-dali-gw2')! },
        { unit: RELAYS, profile: profiles.get('waveshare-modbus-rtu-relay-8ch')! },
        { unit: METER, profile: profiles.get('eastron-sdm120')! },
      ],
    });
    httpPort = await freePort();
    const text = `gateway: { id: ${GW}, dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: cabinet, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, timeout: 500ms }
devices:
  - { id: street-dali, profile: ecodim-dali-gw2, bus: cabinet, unit: ${DALI}, interval: 300ms, points: [brightness, lamp_failure, bus_fault] }
  - { id: street-contactor, profile: waveshare-modbus-rtu-relay-8ch, bus: cabinet, unit: ${RELAYS}, interval: 300ms, points: [relay_1] }
  - { id: street-meter, profile: eastron-sdm120, bus: cabinet, unit: ${METER}, interval: 300ms, points: [current] }
cabinets:
  - id: street-1
    dimmer: { device: street-dali }
    contactor: { device: street-contactor, point: relay_1 }
    meter: { device: street-meter }
    schedule: { steps: [{ at: "23:00", level: 50 }] }
    feeder: { minCurrentA: 0.5, maxCurrentA: 8 }
storage: { batchMaxDelay: 100ms }
panel: { port: ${httpPort}, host: 127.0.0.1 }
sync: { url: "${broker.url}", batchMaxDelay: 200ms }
`;
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, text);
    const parsed = parseConfigText(text, { profiles });
    if (!parsed.ok) throw new Error(formatProblems(parsed.problems));
    linkCabinetLoads(parsed.config, profiles, () => sim);
    l = await listen(broker.url, GW);
    city.pin(join(dir, 'data'));
    gw = startCli(['start', '--config', file]);
    await gw.waitFor('connected to the broker', 20_000);
    // the cabinet's first switching (whatever the real time of day is) is done before we command
    await gw.waitFor(/lamps (set|off)/, 10_000);
    await new Promise((r) => setTimeout(r, 300)); // the agent's cmd subscription
  }, 40_000);

  afterAll(async () => {
    gw?.child.kill('SIGKILL');
    await l?.close();
    await sim?.close();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('dims the lamps and acks on cmd/result; a redelivery runs once; the audit reaches events', async () => {
    await send({ id: 'dim-1', device: 'street-dali', point: 'brightness', value: 100 });
    expect(await resultFor('dim-1')).toMatchObject({ v: 1, id: 'dim-1', ok: true, readBack: 100 });
    expect(sim.getValue(DALI, 'brightness')).toBe(100);

    const writes = sim.stats(DALI).writes;
    await send({ id: 'dim-1', device: 'street-dali', point: 'brightness', value: 100 });
    await waitUntil(() => l.results.filter((r) => r.id === 'dim-1').length === 2, 10_000, 'the second result');
    expect(l.results.filter((r) => r.id === 'dim-1')[1]).toMatchObject({ ok: true, duplicate: true });
    expect(sim.stats(DALI).writes).toBe(writes);

    const audit = await waitUntil(
      () => l.events.flatMap((b) => b.events).find((e) => e.kind === 'command' && e.data.id === 'dim-1'),
      10_000,
      'the command audit event',
    );
    expect(audit.data).toMatchObject({
      source: 'mqtt',
      actor: 'ops-dalat',
      device: 'street-dali',
      point: 'brightness',
      value: 100,
      result: { ok: true },
    });
  });

  it('overrides the cabinet from the city (value as JSON text) and refuses an expired command', async () => {
    await send({ id: 'ovr-1', device: 'street-1', point: 'override', value: JSON.stringify({ level: 30, for: '1h' }) });
    expect(await resultFor('ovr-1')).toMatchObject({ ok: true, readBack: 30 });
    expect(sim.getValue(DALI, 'brightness')).toBe(levelToPoint(30, 'dali', 254));
    expect(sim.getValue(RELAYS, 'relay_1')).toBe(1);

    await send({ id: 'late-1', device: 'street-dali', point: 'brightness', value: 5, deadline: Date.now() - 60_000 });
    expect(await resultFor('late-1')).toMatchObject({ ok: false, code: 'EXPIRED' });
    expect(sim.getValue(DALI, 'brightness')).toBe(levelToPoint(30, 'dali', 254));
  });

  it('`langbiang write` on site dims the same lamps through the same validation', async () => {
    const file = join(dir, 'gateway.yaml');
    const ok = await runCli(['write', '--config', file, 'street-dali', 'brightness', '180', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      ok: true,
      device: 'street-dali',
      point: 'brightness',
      value: 180,
      readBack: 180,
    });
    expect(sim.getValue(DALI, 'brightness')).toBe(180);
    const refused = await runCli(['write', '--config', file, 'street-dali', 'brightness', '255']);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe('langbiang: 255 is out of range for "brightness" (0…254)');
    const cabinet = await runCli(['write', '--config', file, 'street-1', 'override', '30']);
    expect(cabinet.code).toBe(1);
    expect(cabinet.stderr).toMatch(/"street-1" is a cabinet: .* go to the running gateway/);
  });

  it('survives fuzzed cmd payloads, unsigned and signed: an error result for each, no writes, polling and sync go on', async () => {
    // deterministic "random" bytes so a failure can be replayed
    let seed = 0x5eed;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const junk: (string | Buffer)[] = [];
    for (let i = 0; i < 20; i++) junk.push(Buffer.from(Array.from({ length: 1 + (rnd() % 300) }, () => rnd() & 0xff)));
    junk.push(
      '',
      'null',
      '[]',
      '"cmd"',
      '42',
      '{}',
      '{"id":7}',
      '{"id":"fz-1"}',
      '{"id":"fz-2","device":"street-dali","point":"brightness","value":{"a":1}}',
      '{"id":"fz-3","device":"street-dali","point":"brightness","value":"bright"}',
      '{"id":"fz-4","device":"street-dali","point":"brightness","value":1e999}',
      '{"id":"fz-5","device":"street-dali","point":"brightness","value":300}',
      '{"id":"fz-6","device":"../../etc/passwd","point":"x","value":1}',
      '{"id":"fz-7","device":"street-1","point":"schedule","value":"{\\"on\\":\\"noon\\"}"}',
      '{"id":"fz-8","device":"street-1","point":"override","value":"{\\"level\\":999}"}',
      '{"id":"fz-9","device":"street-meter","point":"current","value":0}',
      '{"id":"fz-10","device":"street-dali","point":"brightness","value":1,"deadline":"yesterday"}',
      '{"id":"fz-11","device":"street-dali","point":"brightness","value":1,"extra":true}',
      `${'['.repeat(5000)}${']'.repeat(5000)}`,
      JSON.stringify({ id: 'fz-huge', device: 'street-dali', point: 'brightness', value: 'x'.repeat(1 << 20) }),
      randomBytes(2 << 20),
    );
    // the objects with an fz- id are also sent signed, so their content reaches the router's checks
    for (const p of [...junk]) {
      if (typeof p !== 'string' || !p.startsWith('{"id":"fz-')) continue;
      junk.push(city.signCommand(GW, JSON.parse(p) as Record<string, unknown>));
    }
    const writesBefore = sim.stats(DALI).writes + sim.stats(RELAYS).writes;
    const seqBefore = (await health()).lastSeq;
    const telemetryBefore = l.telemetry.length;
    const resultsBefore = l.results.length;

    for (const p of junk) await send(p);

    await waitUntil(() => l.results.length >= resultsBefore + junk.length, 20_000, `${junk.length} results`);
    const results = l.results.slice(resultsBefore);
    expect(results).toHaveLength(junk.length);
    for (const r of results)
      expect(r).toMatchObject({ v: 1, ok: false, code: expect.any(String), message: expect.any(String) });
    // unsigned: refused before they are read; signed: each refused for what is wrong in it
    const code = (id: string) => results.filter((r) => r.id === id).find((r) => r.code !== 'UNTRUSTED')?.code;
    expect(results.filter((r) => r.code === 'UNTRUSTED').length).toBe(junk.length - 11);
    expect(code('fz-1')).toBe('COMMAND_INVALID');
    expect(code('fz-10')).toBe('COMMAND_INVALID');
    expect(code('fz-11')).toBe('COMMAND_INVALID');
    expect(code('fz-3')).toBe('COMMAND_INVALID');
    expect(code('fz-5')).toBe('OUT_OF_RANGE');
    expect(code('fz-6')).toBe('UNKNOWN_DEVICE');
    expect(code('fz-7')).toBe('COMMAND_INVALID');
    expect(code('fz-8')).toBe('OUT_OF_RANGE');
    expect(code('fz-9')).toBe('NOT_WRITABLE');
    expect(sim.stats(DALI).writes + sim.stats(RELAYS).writes).toBe(writesBefore);

    // alive, still polling, still syncing, still obeying good commands
    expect(gw.child.exitCode).toBeNull();
    expect((await health()).status).toBe('ok');
    await waitUntil(async () => (await health()).lastSeq > seqBefore + 10, 10_000, 'polling goes on');
    await waitUntil(() => l.telemetry.length > telemetryBefore + 2, 10_000, 'telemetry goes on');
    await send({ id: 'after-fuzz', device: 'street-contactor', point: 'relay_1', value: true });
    expect(await resultFor('after-fuzz')).toMatchObject({ ok: true, readBack: 1 });
  }, 40_000);
});
