#!/usr/bin/env node
// The pre-start check of an update (the boot counter), run by systemd before every start
// (ExecStartPre=) and after every stop (ExecStopPost= with --stopped). It lives outside every
// release (<installRoot>/bin/langbiang-prestart.mjs; installed by deploy/install-pi.sh, replaced
// only when a new release confirms itself), uses nothing but Node's built-ins, and always exits 0:
// a broken release must never be able to break the check that rolls it back, and the check must
// never stop the gateway from starting.
//
//   langbiang-prestart.mjs --install-root DIR --data-dir DIR            before a start
//   langbiang-prestart.mjs --install-root DIR --data-dir DIR --stopped  after a stop (reads
//       $SERVICE_RESULT, $EXIT_CODE, $EXIT_STATUS, which systemd sets for ExecStopPost=)
//
// It reads and writes <dataDir>/update/state.json in the format of gateway/update/state.ts.
// Before a start, with a release pending confirmation: count the start; past maxAttempts (crash
// loop, watchdog kills), or at once when the release said it did not become healthy in its
// window, point `current` back at the previous release and write the outcome, which the previous
// release records as an `update` event (outcome rolled-back, reason crashed | hung | unhealthy).
import {
  appendFileSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

/** the exit status of a gateway that switched `current` and stops to let the new release start */
const UPDATE_RESTART_EXIT_CODE = 75;
const STATE_FORMAT = 1;

function arg(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function say(msg) {
  process.stderr.write(`langbiang-prestart: ${msg}\n`);
}

function fsyncPath(path) {
  let fd;
  try {
    fd = openSync(path, 'r');
    fsyncSync(fd);
  } catch {
    // a filesystem that cannot fsync a directory: the rename stands
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function writeJson(file, value) {
  // through a temporary file, fsynced, and a rename: a power cut leaves the old state or the new
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o640 });
  fsyncPath(tmp);
  renameSync(tmp, file);
  fsyncPath(dirname(file));
}

function failureOf(env) {
  const result = env.SERVICE_RESULT;
  if (!result || result === 'success') return null;
  if (env.EXIT_CODE === 'exited' && Number(env.EXIT_STATUS) === UPDATE_RESTART_EXIT_CODE) return null;
  if (result === 'watchdog' || result === 'timeout') return 'hung';
  return 'crashed';
}

function main() {
  const installRoot = arg('--install-root');
  const dataDir = arg('--data-dir');
  if (!installRoot || !dataDir) {
    say('usage: langbiang-prestart.mjs --install-root DIR --data-dir DIR [--stopped]');
    return;
  }
  const stateFile = join(dataDir, 'update', 'state.json');
  let state;
  try {
    state = JSON.parse(readFileSync(stateFile, 'utf8'));
  } catch {
    return; // no update ever: nothing to check
  }
  if (!state || state.v !== STATE_FORMAT || !state.pending) return;
  const p = state.pending;

  if (process.argv.includes('--stopped')) {
    // only a start of the pending release counts; the stop of the release that installed it does not
    if (!(p.attempts > 0)) return;
    const failure = failureOf(process.env);
    if (!failure || p.failure === 'unhealthy') return;
    p.failure = failure;
    p.detail = `${process.env.SERVICE_RESULT} (${process.env.EXIT_CODE ?? '?'} ${process.env.EXIT_STATUS ?? '?'})`;
    writeJson(stateFile, state);
    say(`release ${p.version} stopped: ${failure} (${p.detail})`);
    return;
  }

  const link = join(installRoot, 'current');
  const pendingTarget = join('releases', p.version);
  let target = null;
  try {
    target = readlinkSync(link);
  } catch {
    target = null;
  }
  if (target !== pendingTarget) {
    const attempts = Number.isInteger(p.attempts) ? p.attempts : 0;
    if (p.previous && target === join('releases', p.previous)) {
      // a technician pointed current back by hand: that is a rollback too, and nothing is pending
      rolledBack(state, p, 'manual', attempts, stateFile, dataDir, p.previous);
      return;
    }
    // the install stopped between writing the pending release and switching to it (a power cut,
    // a failed rename), or current was pointed elsewhere by hand: the pending release never starts
    // and so is never confirmed; kept, it would refuse every later update as "not confirmed yet"
    say(`a release is pending (${p.version}) but current points at ${target ?? 'nothing'}; not counting`);
    const running = target && /^releases\/[^/]+$/.test(target) ? target.slice('releases/'.length) : null;
    rolledBack(state, p, 'not-switched', attempts, stateFile, dataDir, running);
    return;
  }
  const unhealthy = p.failure === 'unhealthy';
  const max = Number.isInteger(p.maxAttempts) && p.maxAttempts > 0 ? p.maxAttempts : 3;
  const started = Number.isInteger(p.attempts) && p.attempts > 0 ? p.attempts : 0;
  if (!unhealthy && started < max) {
    p.attempts = started + 1;
    writeJson(stateFile, state);
    say(`starting release ${p.version}, not confirmed yet: start ${p.attempts} of ${max}`);
    return;
  }
  const reason = unhealthy ? 'unhealthy' : (p.failure ?? 'crashed');
  if (!p.previous || !existsSync(join(installRoot, 'releases', p.previous, 'bin', 'langbiang.js'))) {
    say(`release ${p.version} failed (${reason}) but there is no previous release to go back to; starting it anyway`);
    return;
  }
  // back to the previous release: the same atomic switch the installer does
  const tmp = `${link}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  symlinkSync(join('releases', p.previous), tmp);
  renameSync(tmp, link);
  fsyncPath(installRoot);
  rolledBack(state, p, reason, started, stateFile, dataDir, p.previous);
}

/** Writes the outcome, and the event the previous release records when it starts (update/events.jsonl). */
function rolledBack(state, p, reason, attempts, stateFile, dataDir, running) {
  const at = new Date().toISOString();
  state.last = { outcome: 'rolled-back', version: p.version, previous: running, reason, at };
  delete state.pending;
  writeJson(stateFile, state);
  const event = {
    outcome: 'rolled-back',
    version: p.version,
    running,
    reason,
    attempts,
    ...(p.detail ? { detail: p.detail } : {}),
    at,
  };
  mkdirSync(join(dataDir, 'update'), { recursive: true, mode: 0o750 });
  appendFileSync(join(dataDir, 'update', 'events.jsonl'), `${JSON.stringify(event)}\n`, { mode: 0o640 });
  say(`release ${p.version} rolled back to ${running ?? 'nothing'}: ${reason} after ${attempts} start(s)`);
}

try {
  main();
} catch (err) {
  say(`check failed, starting as is: ${err?.message ? err.message : String(err)}`);
}
