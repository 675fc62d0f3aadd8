import { mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../hardware/profiles.js';
import { ModbusSimulator } from '../../hardware/simulators/index.js';
import { type RunningCli, runCli, startCli, waitUntil } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

/**
 * The Node-RED editor at /red/ sits behind the gateway's own login: no session → 401, a farmer →
 * 403, a technician → the editor (HTTP and its websocket), with no second password anywhere.
 * The child's own port refuses anyone who comes without the gateway's proxy token.
 */

const PASSWORD = 'correct horse battery staple';

/** 127.0.0.1 ports the process listens on, from /proc (the child's port is nowhere in the API). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // fd closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9]!)) continue; // 0A = LISTEN
    const [addr, port] = f[1]!.split(':');
    expect(addr).toBe('0100007F'); // 127.0.0.1 only
    ports.push(Number.parseInt(port!, 16));
  }
  return ports;
}

/** Asks for a websocket upgrade; resolves with the status line's code. */
function upgrade(port: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': Buffer.from('0123456789abcdef').toString('base64'),
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the Node-RED editor at /red/', () => {
  let dir: string;
  let port: number;
  let gw: RunningCli;
  let base: string;
  let sim: ModbusSimulator;
  const cookies: Record<string, string> = {};

  const login = async (user: string) => {
    const res = await fetch(`${base}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user, password: PASSWORD }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    return res.headers.get('set-cookie')!.split(';')[0]!;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'langbiang-flows-editor-'));
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    sim = await ModbusSimulator.tcp({
      units: [
        { unit: 1, profile: loadProfile('comwintop-cwt-soil') },
        { unit: 5, profile: loadProfile('waveshare-modbus-rtu-relay-8ch') },
      ],
    });
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `gateway: { id: dl-gw-flows-editor, dataDir: ${dir}/data, assumeClockSynced: true }
buses: [{ id: sim, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port} }]
devices:
  - { id: soil-a1, profile: comwintop-cwt-soil, bus: sim, unit: 1, interval: 500ms }
  - { id: valves, profile: waveshare-modbus-rtu-relay-8ch, bus: sim, unit: 5, interval: 1s }
storage: { batchMaxDelay: 200ms }
panel: { port: ${port}, host: 127.0.0.1 }
flows: { enabled: true }
`,
    );
    for (const [name, role] of [
      ['tech', 'technician'],
      ['farmer', 'farmer'],
    ]) {
      const r = await runCli(['user', 'add', name, '--role', role!, '--config', config], { input: `${PASSWORD}\n` });
      expect(r.code, r.stderr).toBe(0);
    }
    gw = startCli(['start', '--config', config]);
    await gw.waitFor('node-red running', 60_000);
    await gw.waitFor('http listening', 10_000);
    cookies.tech = await login('tech');
    cookies.farmer = await login('farmer');
  }, 90_000);

  afterAll(async () => {
    gw?.child.kill('SIGKILL');
    await sim?.close();
  });

  it('answers 401 without a session and 403 to a farmer, also when the browser forges the proxy header', async () => {
    for (const path of ['/red/', '/red/flows', '/red/settings']) {
      expect((await fetch(base + path)).status).toBe(401);
      expect((await fetch(base + path, { headers: { 'x-langbiang-editor': 'guess tech' } })).status).toBe(401);
      expect((await fetch(base + path, { headers: { cookie: cookies.farmer! } })).status).toBe(403);
      expect(
        (await fetch(base + path, { headers: { cookie: cookies.farmer!, 'x-langbiang-editor': 'guess tech' } })).status,
      ).toBe(403);
    }
    expect(await upgrade(port, '/red/comms', {})).toBe(401);
    expect(await upgrade(port, '/red/comms', { cookie: cookies.farmer! })).toBe(403);
  });

  it('serves a technician the editor, the default flows and the websocket, as that user', async () => {
    const page = await fetch(`${base}/red/`, { headers: { cookie: cookies.tech! } });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/Node-RED/);

    const settings = await fetch(`${base}/red/settings`, { headers: { cookie: cookies.tech! } });
    expect(settings.status).toBe(200);
    expect(((await settings.json()) as { user?: { username: string } }).user?.username).toBe('tech');

    const flows = (await (await fetch(`${base}/red/flows`, { headers: { cookie: cookies.tech! } })).json()) as {
      type: string;
      label?: string;
    }[];
    expect(flows.filter((n) => n.type === 'tab').map((n) => n.label)).toEqual([
      'Greenhouse irrigation',
      'Streetlight fallback',
    ]);
    expect(flows.some((n) => n.type === 'langbiang irrigation')).toBe(true);

    const nodes = (await (
      await fetch(`${base}/red/nodes`, { headers: { cookie: cookies.tech!, accept: 'application/json' } })
    ).json()) as {
      types: string[];
    }[];
    expect(
      nodes
        .flatMap((n) => n.types)
        .filter((t) => t.startsWith('langbiang'))
        .sort(),
    ).toEqual([
      'langbiang command',
      'langbiang event',
      'langbiang history',
      'langbiang irrigation',
      'langbiang reading',
    ]);
    // the nodes that run programs or touch files are not loaded (flows.allowUnsafeNodes is off)
    const types = nodes.flatMap((n) => n.types);
    expect(types).toContain('function');
    for (const unsafe of ['exec', 'file', 'file in', 'watch']) expect(types).not.toContain(unsafe);

    expect(await upgrade(port, '/red/comms', { cookie: cookies.tech! })).toBe(101);
  });

  it('deploys from the same origin only, into the data directory; the deployed history, event and command nodes work', async () => {
    const z = 'e000000000000001';
    const newFlows = [
      { id: z, type: 'tab', label: 'edited by tech' },
      // stored moisture readings → relay_2 on when there are some, all of soil-a1/moisture
      {
        id: 'e000000000000002',
        type: 'inject',
        z,
        once: true,
        onceDelay: 1,
        repeat: '',
        props: [],
        wires: [['e000000000000003']],
      },
      {
        id: 'e000000000000003',
        type: 'langbiang history',
        z,
        device: 'soil-a1',
        point: 'moisture',
        range: '1h',
        limit: 50,
        order: 'asc',
        wires: [['e000000000000004']],
      },
      {
        id: 'e000000000000004',
        type: 'function',
        z,
        func: "return { payload: msg.payload.length > 0 && msg.payload.every((r) => r.device === 'soil-a1' && r.point === 'moisture' && r.quality === 'good') };",
        outputs: 1,
        wires: [['e000000000000005']],
      },
      { id: 'e000000000000005', type: 'langbiang command', z, device: 'valves', point: 'relay_2', wires: [[]] },
      // the audit event of that command → relay_3 on
      {
        id: 'e000000000000006',
        type: 'langbiang event',
        z,
        gap: false,
        alarm: false,
        command: true,
        flows: false,
        device: 'valves',
        wires: [['e000000000000007']],
      },
      {
        id: 'e000000000000007',
        type: 'function',
        z,
        func: "const d = msg.payload; return d.point === 'relay_2' && d.source === 'flows' && d.result.ok ? { payload: true } : null;",
        outputs: 1,
        wires: [['e000000000000008']],
      },
      { id: 'e000000000000008', type: 'langbiang command', z, device: 'valves', point: 'relay_3', wires: [[]] },
    ];
    const post = (origin: string) =>
      fetch(`${base}/red/flows`, {
        method: 'POST',
        headers: {
          cookie: cookies.tech!,
          origin,
          'content-type': 'application/json',
          'node-red-deployment-type': 'full',
        },
        body: JSON.stringify(newFlows),
      });
    expect((await post('http://evil.example')).status).toBe(403);
    const ok = await post(base);
    expect(ok.status, await ok.clone().text()).toBe(204);
    const saved = JSON.parse(readFileSync(join(dir, 'data', 'flows', 'flows.json'), 'utf8')) as { label?: string }[];
    expect(saved[0]!.label).toBe('edited by tech');
    await waitUntil(() => sim.getValue(5, 'relay_2') === 1, 15_000, 'the history → command flow to switch relay_2');
    await waitUntil(
      () => sim.getValue(5, 'relay_3') === 1,
      15_000,
      'the command event → command flow to switch relay_3',
    );
    // the credential key lives in the gateway's secret store, readable by the gateway alone
    expect(statSync(join(dir, 'data', 'secrets', 'node-red-credentials')).mode & 0o777).toBe(0o600);
  });

  it("the runtime's own port is loopback only and refuses requests without the gateway's proxy token", async () => {
    const health = (await (await fetch(`${base}/healthz`)).json()) as { flows: { pid: number; state: string } };
    expect(health.flows.state).toBe('running');
    const ports = listeningPorts(health.flows.pid);
    expect(ports).toHaveLength(1);
    const direct = `http://127.0.0.1:${ports[0]}`;
    expect((await fetch(`${direct}/red/flows`)).status).toBe(401);
    expect((await fetch(`${direct}/red/flows`, { headers: { 'x-langbiang-editor': 'wrong-token tech' } })).status).toBe(
      401,
    );
    // its own login never succeeds: there is no password list to guess
    const token = await fetch(`${direct}/red/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_id: 'node-red-editor',
        grant_type: 'password',
        scope: '*',
        username: 'admin',
        password: 'password',
      }),
    });
    expect(token.status).toBe(403);
  });
});
