import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type NotifySink,
  SystemdNotifySink,
  systemdEnv,
  Watchdog,
  type WatchdogTimers,
} from '../../gateway/systemd/index.js';

/** A clock the test moves by hand; intervals fire as real ones would, in order. */
class ManualTimers implements WatchdogTimers {
  now = 0;
  private next = 1;
  private readonly timers = new Map<number, { fn: () => void; every: number; due: number }>();
  setInterval(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.set(id, { fn, every: ms, due: this.now + ms });
    return id;
  }
  clearInterval(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.timers.values()].filter((t) => t.due <= end).sort((a, b) => a.due - b.due)[0];
      if (!due) break;
      this.now = due.due;
      due.due += due.every;
      due.fn();
    }
    this.now = end;
  }
}

class FakeSink implements NotifySink {
  readonly sent: { at: number; fields: Record<string, string> }[] = [];
  constructor(private readonly timers: ManualTimers) {}
  send(fields: Record<string, string>): void {
    this.sent.push({ at: this.timers.now, fields });
  }
  pings(): number[] {
    return this.sent.filter((s) => s.fields.WATCHDOG === '1').map((s) => s.at);
  }
}

describe('systemdEnv', () => {
  it('is null without NOTIFY_SOCKET (run by hand, docker, tests)', () => {
    expect(systemdEnv({}, 42)).toBeNull();
    expect(systemdEnv({ WATCHDOG_USEC: '30000000' }, 42)).toBeNull();
  });

  it('reads the watchdog period from WATCHDOG_USEC', () => {
    expect(systemdEnv({ NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000' }, 42)).toEqual({
      socket: '/run/systemd/notify',
      watchdogMs: 30_000,
    });
  });

  it('ignores a watchdog meant for another process (a child that inherited the environment)', () => {
    const env = { NOTIFY_SOCKET: '@abstract', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '41' };
    expect(systemdEnv(env, 42)?.watchdogMs).toBeNull();
    expect(systemdEnv(env, 41)?.watchdogMs).toBe(30_000);
  });

  it('treats a missing or nonsense WATCHDOG_USEC as no watchdog', () => {
    expect(systemdEnv({ NOTIFY_SOCKET: '/s' }, 1)?.watchdogMs).toBeNull();
    expect(systemdEnv({ NOTIFY_SOCKET: '/s', WATCHDOG_USEC: 'x' }, 1)?.watchdogMs).toBeNull();
    expect(systemdEnv({ NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '0' }, 1)?.watchdogMs).toBeNull();
  });
});

describe('Watchdog', () => {
  it('sends READY=1 once, then pings at half the watchdog period', () => {
    const timers = new ManualTimers();
    const sink = new FakeSink(timers);
    const wd = new Watchdog({ sink, watchdogMs: 30_000, timers });
    timers.advance(60_000);
    expect(sink.sent).toEqual([]); // nothing before ready
    wd.ready('polling 3 devices');
    wd.ready();
    expect(sink.sent).toEqual([{ at: 60_000, fields: { READY: '1', STATUS: 'polling 3 devices' } }]);
    expect(wd.intervalMs).toBe(15_000);
    timers.advance(60_000);
    expect(sink.pings()).toEqual([75_000, 90_000, 105_000, 120_000]);
  });

  it('never leaves a gap longer than the watchdog period', () => {
    const timers = new ManualTimers();
    const sink = new FakeSink(timers);
    new Watchdog({ sink, watchdogMs: 7_000, timers }).ready();
    timers.advance(100_000);
    const at = [0, ...sink.pings()];
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    expect(gaps.length).toBeGreaterThan(20);
    expect(Math.max(...gaps)).toBeLessThan(7_000);
  });

  it('sends readiness but no pings when the unit has no WatchdogSec', () => {
    const timers = new ManualTimers();
    const sink = new FakeSink(timers);
    const wd = new Watchdog({ sink, watchdogMs: null, timers });
    wd.ready();
    timers.advance(120_000);
    expect(wd.intervalMs).toBeNull();
    expect(sink.sent.map((s) => s.fields)).toEqual([{ READY: '1' }]);
  });

  it('withholds pings while the gateway reports itself unhealthy', () => {
    const timers = new ManualTimers();
    const sink = new FakeSink(timers);
    let healthy = true;
    new Watchdog({ sink, watchdogMs: 10_000, timers, healthy: () => healthy }).ready();
    timers.advance(10_000);
    healthy = false;
    timers.advance(20_000);
    healthy = true;
    timers.advance(10_000);
    expect(sink.pings()).toEqual([5_000, 10_000, 35_000, 40_000]);
  });

  it('says STOPPING=1 and stops pinging on a clean stop', () => {
    const timers = new ManualTimers();
    const sink = new FakeSink(timers);
    const wd = new Watchdog({ sink, watchdogMs: 10_000, timers });
    wd.ready();
    timers.advance(5_000);
    wd.stopping();
    timers.advance(60_000);
    expect(sink.sent.map((s) => s.fields)).toEqual([{ READY: '1' }, { WATCHDOG: '1' }, { STOPPING: '1' }]);
  });
});

describe('the systemd status line', () => {
  it('is sent after READY, only when it changes', () => {
    const timers = new ManualTimers();
    const sink = new FakeSink(timers);
    const wd = new Watchdog({ sink, watchdogMs: null, timers });
    wd.status('degraded: bus rs485-1: /dev/ttyUSB0 not found'); // before READY: systemd is not listening yet
    expect(sink.sent).toEqual([]);
    wd.ready('polling 3 devices');
    wd.status('polling 3 devices'); // the same as READY's: nothing new
    wd.status('degraded: bus rs485-1: /dev/ttyUSB0 not found');
    wd.status('degraded: bus rs485-1: /dev/ttyUSB0 not found');
    wd.status('ok: every bus open, no device offline');
    expect(sink.sent.map((s) => s.fields)).toEqual([
      { READY: '1', STATUS: 'polling 3 devices' },
      { STATUS: 'degraded: bus rs485-1: /dev/ttyUSB0 not found' },
      { STATUS: 'ok: every bus open, no device offline' },
    ]);
  });
});

/**
 * A stand-in for systemd-notify that appends its arguments (without --pid) to a log, sleeping
 * first when they match `slowCase` (a sh case pattern): a sender that systemd keeps waiting.
 */
function fakeNotify(slowCase: string, seconds: number): { sink: SystemdNotifySink; lines: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'langbiang-notify-'));
  const log = join(dir, 'sent.log');
  const program = join(dir, 'fake-notify.sh');
  writeFileSync(
    program,
    `#!/bin/sh\ncase "$*" in ${slowCase}) sleep ${seconds};; esac\necho "$*" | sed 's/--pid=[0-9]* //' >> ${log}\n`,
  );
  chmodSync(program, 0o755);
  // the shell creates the file before the line is written: only whole lines count
  const lines = () => {
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    return text
      .slice(0, text.lastIndexOf('\n') + 1)
      .split('\n')
      .filter(Boolean);
  };
  return { sink: new SystemdNotifySink({ socket: join(dir, 'notify.sock'), program }), lines };
}

describe('SystemdNotifySink (real child processes)', () => {
  it('delivers in the order sent even when the first sender is slow; a waiting status is replaced by a newer one', async () => {
    // The READY sender is slow, so without one-at-a-time the STATUS sent right after it would
    // reach the socket first.
    const { sink, lines } = fakeNotify('*--ready*', 0.3);
    sink.send({ READY: '1', STATUS: 'polling 3 devices' });
    sink.send({ STATUS: 'degraded: one' });
    sink.send({ STATUS: 'degraded: two' }); // replaces "one", which never went out
    sink.send({ WATCHDOG: '1' }); // a sender is in flight: a ping is pointless, dropped
    sink.send({ STATUS: 'degraded: three' }); // replaces "two"
    const want = ['--ready --status=polling 3 devices', '--status=degraded: three'];
    const deadline = Date.now() + 10_000;
    let got: string[] = [];
    while (Date.now() < deadline) {
      got = lines();
      if (got.length >= want.length) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 200)); // nothing more arrives
    expect(lines()).toEqual(want);
  });

  it('sends STOPPING=1 at once, not behind a sender in flight (the process exits right after)', async () => {
    // The ping's sender hangs for 1.5 s, as when systemd is busy; the gateway stops meanwhile.
    const { sink, lines } = fakeNotify('*WATCHDOG*', 1.5);
    sink.send({ WATCHDOG: '1' });
    sink.send({ STATUS: 'degraded: waiting' }); // waits behind the ping
    sink.send({ STOPPING: '1' }); // goes now; the waiting status is dropped
    const deadline = Date.now() + 1_000;
    while (Date.now() < deadline && lines().length === 0) await new Promise((r) => setTimeout(r, 20));
    // before the ping's sender is done, STOPPING=1 has been delivered
    expect(lines()).toEqual(['STOPPING=1']);
    await new Promise((r) => setTimeout(r, 1_800));
    expect(lines()).toEqual(['STOPPING=1', 'WATCHDOG=1']);
  });
});
