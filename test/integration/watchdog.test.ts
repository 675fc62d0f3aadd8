import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.js';
import { type NotifyReceiver, startNotifyReceiver } from '../helpers/notify-receiver.js';
import { freePort } from '../helpers/ports.js';

const CHILD = fileURLToPath(new URL('../helpers/watchdog-child.mjs', import.meta.url));

let dir: string;
let rx: NotifyReceiver | null = null;
const kills: (() => void)[] = [];

afterEach(() => {
  for (const k of kills.splice(0)) k();
  rx?.close();
  rx = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('systemd watchdog (real systemd-notify, real AF_UNIX datagram socket)', () => {
  it('pings from the main loop: no ping while the loop is blocked, pings again after', async () => {
    dir = mkdtempSync(join(tmpdir(), 'lb-wd-'));
    rx = await startNotifyReceiver(join(dir, 'notify.sock'));
    const child = spawn(process.execPath, [CHILD, '1500', '2500', '1800'], {
      env: { ...process.env, NOTIFY_SOCKET: rx.socket, WATCHDOG_USEC: '400000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    kills.push(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code, out).toBe(0);
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number | string>);
    expect(lines.filter((l) => 'error' in l)).toEqual([]);
    const blockStart = lines.find((l) => 'blockStart' in l)!.blockStart as number;
    const blockEnd = lines.find((l) => 'blockEnd' in l)!.blockEnd as number;
    const done = lines.find((l) => 'done' in l)!.done as number;
    expect(blockEnd - blockStart).toBeGreaterThanOrEqual(2400);
    // the last ping's barrier may still be in flight when the child exits
    await rx.waitFor((m) => m.some((x) => x.t >= done - 600 && x.fields.WATCHDOG === '1'), 5_000, 'the last pings');

    expect(rx.messages[0]!.fields.READY).toBe('1');
    expect(rx.messages[0]!.fields.MAINPID).toBe(String(child.pid));
    const pings = rx.messages.filter((m) => m.fields.WATCHDOG === '1').map((m) => m.t);
    const before = pings.filter((t) => t < blockStart);
    // a ping whose sender was spawned just before the block may land a moment after it began
    const during = pings.filter((t) => t > blockStart + 300 && t < blockEnd);
    const after = pings.filter((t) => t >= blockEnd);
    expect(before.length, `pings ${JSON.stringify(pings)}`).toBeGreaterThanOrEqual(3);
    expect(during, `block ${blockStart}..${blockEnd}`).toEqual([]);
    expect(after.length).toBeGreaterThanOrEqual(3);
    // the first ping after the block comes within one ping interval (200 ms), with slack for a busy box
    expect(after[0]! - blockEnd).toBeLessThan(1_500);
  }, 30_000);

  it('`langbiang start` sends READY=1 once started and pings at WatchdogSec/2; STOPPING=1 on SIGTERM', async () => {
    dir = mkdtempSync(join(tmpdir(), 'lb-wd-'));
    rx = await startNotifyReceiver(join(dir, 'notify.sock'));
    const port = await freePort();
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      `gateway: { id: wd-test, dataDir: ${join(dir, 'data')} }\npanel: { port: ${port}, host: 127.0.0.1 }\n`,
    );
    const gw = startCli(['start', '--config', config], {
      env: { NOTIFY_SOCKET: rx.socket, WATCHDOG_USEC: '1000000' },
    });
    kills.push(() => gw.child.kill('SIGKILL'));
    await gw.waitFor('systemd notified: ready', 20_000);
    // readiness comes after HTTP is listening: /healthz answers by then
    expect(gw.output().indexOf('http listening')).toBeLessThan(gw.output().indexOf('systemd notified: ready'));
    await rx.waitFor((m) => m.filter((x) => x.fields.WATCHDOG === '1').length >= 3, 10_000, 'three pings');
    const ready = rx.messages.find((m) => m.fields.READY === '1');
    expect(ready?.fields.STATUS).toBe('polling 0 devices');
    expect(ready?.fields.MAINPID).toBe(String(gw.child.pid));
    const pings = rx.messages.filter((m) => m.fields.WATCHDOG === '1').map((m) => m.t);
    expect(pings[0]!).toBeGreaterThanOrEqual(ready!.t);
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    await rx.waitFor((m) => m.some((x) => x.fields.STOPPING === '1'), 5_000, 'STOPPING=1');
  }, 40_000);
});
