import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoConfigPath } from '../../gateway/config/index.js';
import { BIN, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { type Listener, listen } from '../helpers/mqtt-listener.js';
import { freePort } from '../helpers/ports.js';

/**
 * Issue 18: the demo syncs in one step, a copy of the demo config starts its own simulators with
 * --simulate (and says so when it was started without them), and the logs are for people on a
 * terminal: one coloured line per event, each device's key values in its profile's order.
 */
describe('a copy of the demo config', () => {
  let dir: string;
  let copy: string;
  let simPort: number;
  let httpPort: number;
  let broker: Mosquitto;
  let l: Listener;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'langbiang-demo-copy-'));
    simPort = await freePort();
    httpPort = await freePort();
    // what docs/install tell a technician to do: copy the demo config and change what they need
    copy = join(dir, 'my-demo.yaml');
    writeFileSync(
      copy,
      readFileSync(demoConfigPath(), 'utf8')
        .replace('port: 15502', `port: ${simPort}`)
        .replace('port: 8080', `port: ${httpPort}`)
        .replace(/flows:\n {2}enabled: true/, 'flows:\n  enabled: false'),
    );
    broker = await startMosquitto();
    l = await listen(broker.url, 'dl-demo-0001');
  });

  afterAll(async () => {
    await l?.close();
    await broker?.close();
  });

  it('without its simulators, says why the bus is refused and how to start them', async () => {
    const gw = startCli(['start', '--config', copy], { cwd: dir });
    try {
      await gw.waitFor('http listening', 20_000);
      expect(gw.output()).toContain(
        `bus demo-tcp not open: 127.0.0.1:${simPort} refused the connection — nothing listens there; if these are the demo's simulated devices, start them too: langbiang start --config FILE --simulate`,
      );
    } finally {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
  });

  it('--simulate --sync URL: simulators, gateway and sync in one step; the summary shows key values in profile order', async () => {
    const gw = startCli(['start', '--config', copy, '--simulate', '--sync', broker.url], { cwd: dir });
    try {
      await gw.waitFor('connected to the broker', 20_000);
      await waitUntil(() => l.seqs().length >= 5, 15_000, 'demo readings at the city broker');
      expect(l.telemetry[0]!.gateway).toBe('dl-demo-0001');
      const health = (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()) as { status: string };
      expect(health.status).toBe('ok');
      await gw.waitFor(
        /readings stored: soil-a1 moisture=[\d.]+ % temperature=[\d.-]+ °C ec=\d+ µS\/cm \| soil-a2 moisture=/,
        10_000,
      );
      expect(gw.output()).toMatch(
        /climate-1 temperature=[\d.-]+ °C humidity=[\d.]+ %RH \| meter-1 voltage=[\d.]+ V current=/,
      );
      expect(gw.output()).toContain(`--sync: syncing to ${broker.url} for this run`);
    } finally {
      gw.child.kill('SIGTERM');
      expect(await gw.exited).toBe(0);
    }
  });

  it('--sync with something that is not a broker URL names the flag, not a line of the file', async () => {
    const r = await runCli(['start', '--config', copy, '--sync', 'http://mqtt.example']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `langbiang: ${copy} is not valid:\n--sync: "http://mqtt.example" is not a broker URL (use mqtt://, mqtts://, ws:// or wss://)\n`,
    );
  });

  it('on a terminal the log is pretty: one coloured line per event, not JSON', async () => {
    // `script` gives the gateway a real pseudo-terminal as its stdout, as a technician's ssh session does
    const cmd = `exec ${process.execPath} ${BIN} start --config ${copy} --simulate`;
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    try {
      await waitUntil(() => out.includes('readings stored'), 20_000, 'the summary line on the terminal');
      const lines = out.split(/\r?\n/).filter((x) => x.trim() !== '');
      // colours are ANSI escape sequences: ESC [ 3x m
      const ESC = String.fromCharCode(27);
      const plain = lines.map((x) => x.replace(new RegExp(`${ESC}\\[[0-9;]*m`, 'g'), ''));
      expect(out).toContain(`${ESC}[3`); // coloured
      expect(plain.some((x) => x.startsWith('{'))).toBe(false); // no JSON
      // a log field named like pino's own (level) would print as USERLVL and lose its value
      expect(plain.filter((x) => x.includes('USERLVL'))).toEqual([]);
      expect(plain.find((x) => /lamps (off|set)/.test(x))).toMatch(
        /INFO: lamps (off|set) \{"cabinet":"street-1","lampLevel":\d+/,
      );
      expect(plain.find((x) => x.includes('store open'))).toMatch(
        /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: store open \{.*"gateway":"dl-demo-0001"/,
      );
      expect(plain.find((x) => x.includes('readings stored'))).toMatch(/INFO: readings stored: soil-a1 moisture=/);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
