import { copyFileSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { EventRecorder } from '../core/outbox.js';
import { currentVersion, installRootOf, packageRoot, packageVersion, prestartPath, releasesDir } from './layout.js';
import { drainUpdateEvents, readState, recordUpdateEvent, writeState } from './state.js';
import type { HealthBaseline } from './types.js';

/** The health report's parts the verdict reads (gateway/health.ts, Gateway.health()). */
export interface HealthLike {
  buses?: { bus: string; open: boolean; devices: { device: string; state: string }[] }[];
  sync?: { connected?: boolean };
}

/**
 * Healthy, for a new release: the store is open (it runs), every bus is open, every device that
 * answered under the previous release answers (state ok), and the city link is up if it was.
 * Returns what is still missing, in words; empty when healthy.
 */
export function missingHealth(h: HealthLike, baseline: HealthBaseline | null): string[] {
  const why: string[] = [];
  const devices = new Map<string, string>();
  for (const b of h.buses ?? []) {
    if (!b.open) why.push(`bus ${b.bus} is not open`);
    for (const d of b.devices) devices.set(d.device, d.state);
  }
  for (const d of baseline?.devices ?? []) {
    const state = devices.get(d);
    if (state !== 'ok') why.push(`device ${d} answered before the update and is ${state ?? 'not configured'} now`);
  }
  if (baseline?.sync && h.sync?.connected !== true) why.push('the city link was up before the update and is not now');
  return why;
}

/** The baseline a running gateway records when it installs a release: what is healthy now. */
export function baselineFromHealth(h: HealthLike): HealthBaseline {
  const devices: string[] = [];
  for (const b of h.buses ?? []) for (const d of b.devices) if (d.state === 'ok') devices.push(d.device);
  return { devices, sync: h.sync?.connected === true };
}

export interface UpdateSupervisionOptions {
  dataDir: string;
  log: Logger;
  /** the store, where `update` events go */
  events: () => EventRecorder;
  health: () => HealthLike;
  /** update.confirmWindow */
  confirmWindowMs: number;
  /** the release did not become healthy in time: stop with a non-zero exit (the supervisor restarts) */
  onUnhealthy: (why: string[]) => void;
  checkEveryMs?: number;
  now?: () => number;
}

/**
 * Run by `langbiang start` once the gateway runs: records the `update` events other processes left
 * (a technician's install, the pre-start check's rollback), and — when this release was installed
 * and not yet confirmed — watches its health for the confirmation window: healthy, it confirms
 * itself (the previous release is kept, older ones pruned, the pre-start check updated); not
 * healthy in time, it says why in the state and stops, so the pre-start check rolls it back.
 */
export function superviseUpdates(o: UpdateSupervisionOptions): { stop(): void; confirming: boolean } {
  const log = o.log;
  const now = o.now ?? Date.now;
  const drain = () => {
    try {
      drainUpdateEvents(o.dataDir, o.events());
    } catch (err) {
      log.warn({ err: describeError(err) }, 'update events could not be recorded');
    }
  };
  drain();
  const drainTimer = setInterval(drain, 5_000);
  drainTimer.unref();

  const version = packageVersion();
  const installRoot = installRootOf();
  const pending = readState(o.dataDir).pending;
  const handle = {
    confirming: false,
    stop() {
      clearInterval(drainTimer);
      if (timer) clearInterval(timer);
    },
  };
  let timer: NodeJS.Timeout | null = null;
  if (!installRoot || !pending || pending.version !== version || currentVersion(installRoot) !== version) return handle;

  handle.confirming = true;
  const started = now();
  log.info(
    { version, previous: pending.previous, windowMs: o.confirmWindowMs, attempt: pending.attempts },
    `release ${version} is new: it must become healthy within ${Math.round(o.confirmWindowMs / 1000)} s to be kept`,
  );
  let done = false;
  const check = () => {
    if (done) return;
    let why: string[];
    try {
      why = missingHealth(o.health(), pending.baseline);
    } catch (err) {
      why = [`health could not be read: ${describeError(err)}`];
    }
    if (why.length === 0) {
      done = true;
      if (timer) clearInterval(timer);
      confirm(o, installRoot, version);
      return;
    }
    if (now() - started < o.confirmWindowMs) return;
    done = true;
    if (timer) clearInterval(timer);
    const state = readState(o.dataDir);
    if (state.pending?.version === version) {
      state.pending.failure = 'unhealthy';
      state.pending.detail = why.join('; ').slice(0, 500);
      writeState(o.dataDir, state);
    }
    log.error(
      { version, missing: why },
      `release ${version} did not become healthy in time: ${why.join('; ')}; stopping for the rollback`,
    );
    o.onUnhealthy(why);
  };
  timer = setInterval(check, o.checkEveryMs ?? 1_000);
  timer.unref();
  return handle;
}

function confirm(o: UpdateSupervisionOptions, installRoot: string, version: string): void {
  const state = readState(o.dataDir);
  const p = state.pending;
  if (!p || p.version !== version) return;
  const at = new Date((o.now ?? Date.now)()).toISOString();
  delete state.pending;
  state.confirmed = version;
  state.previous = p.previous;
  state.last = { outcome: 'confirmed', version, previous: p.previous, at };
  writeState(o.dataDir, state);
  o.log.info({ version, previous: p.previous, attempts: p.attempts }, `release ${version} is healthy: confirmed`);
  try {
    recordUpdateEvent(
      o.dataDir,
      { outcome: 'confirmed', version, previous: p.previous, attempts: p.attempts, source: p.source, at },
      o.events(),
    );
  } catch (err) {
    o.log.warn({ err: describeError(err) }, 'the confirmation event could not be recorded');
  }
  try {
    installPrestart(installRoot);
  } catch (err) {
    o.log.warn({ err: describeError(err) }, 'the pre-start check could not be updated; the old one stays');
  }
  pruneReleases(installRoot, [version, p.previous], o.log);
}

/** The confirmed release's pre-start check replaces the installed one (a rename: never half a file). */
export function installPrestart(installRoot: string, fromRoot = packageRoot()): void {
  const to = prestartPath(installRoot);
  mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
  const tmp = `${to}.tmp-${process.pid}`;
  copyFileSync(join(fromRoot, 'bin', 'langbiang-prestart.mjs'), tmp);
  renameSync(tmp, to);
}

/** Keeps the running release and the previous one; older ones (and staging left by a crash) go. */
export function pruneReleases(installRoot: string, keep: (string | null)[], log: Logger): void {
  let names: string[];
  try {
    names = readdirSync(releasesDir(installRoot));
  } catch {
    return;
  }
  for (const name of names) {
    if (keep.includes(name)) continue;
    try {
      rmSync(join(releasesDir(installRoot), name), { recursive: true, force: true });
      log.info({ release: name }, `release ${name} removed (two are kept)`);
    } catch (err) {
      log.warn({ release: name, err: describeError(err) }, 'an old release could not be removed');
    }
  }
}
