import { appendFileSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { EventRecorder } from '../core/outbox.js';
import { writeFileAtomic } from '../provision/files.js';
import type { HealthBaseline } from './types.js';

/**
 * The update state, `<dataDir>/update/state.json`: written by the installer, the new release when
 * it confirms itself (or gives up), and the pre-start check (bin/langbiang-prestart.mjs, plain JS
 * that reads and writes the same format — change both together). Written whole, through a
 * temporary file and a rename, so a power cut never leaves half a state.
 */
export const STATE_FORMAT = 1;

export type FailureReason = 'crashed' | 'hung' | 'unhealthy';

export interface PendingRelease {
  version: string;
  /** the release to go back to (null: none, the first install) */
  previous: string | null;
  /** starts so far (the pre-start check counts them) */
  attempts: number;
  maxAttempts: number;
  appliedAt: string;
  source: string;
  baseline: HealthBaseline | null;
  /** why the last start ended, as the stop hook or the release itself recorded it */
  failure?: FailureReason;
  detail?: string;
}

export interface LastUpdate {
  outcome: 'installed' | 'confirmed' | 'rolled-back' | 'refused';
  version: string;
  at: string;
  previous?: string | null;
  reason?: string;
}

export interface UpdateState {
  v: number;
  pending?: PendingRelease;
  /** the release confirmed last, and the one kept before it */
  confirmed?: string;
  previous?: string | null;
  last?: LastUpdate;
}

export function updateDir(dataDir: string): string {
  return join(dataDir, 'update');
}

function statePath(dataDir: string): string {
  return join(updateDir(dataDir), 'state.json');
}

function journalPath(dataDir: string): string {
  return join(updateDir(dataDir), 'events.jsonl');
}

export function readState(dataDir: string): UpdateState {
  try {
    const s = JSON.parse(readFileSync(statePath(dataDir), 'utf8')) as UpdateState;
    if (s && typeof s === 'object' && s.v === STATE_FORMAT) return s;
  } catch {
    // none yet, or unreadable: start from nothing rather than block an update or a start
  }
  return { v: STATE_FORMAT };
}

export function writeState(dataDir: string, state: UpdateState): void {
  mkdirSync(updateDir(dataDir), { recursive: true, mode: 0o750 });
  // fsynced before and after the rename: the pending release must be on disk before `current`
  // moves to it, or a power cut could leave a switched release that nothing watches
  writeFileAtomic(statePath(dataDir), `${JSON.stringify(state, null, 2)}\n`, 0o640);
}

/**
 * An `update` event: recorded at once by the running gateway, or kept in `update/events.jsonl` by a
 * process that does not own the store (the CLI, the pre-start check) until the gateway records it.
 */
export function recordUpdateEvent(dataDir: string, data: Record<string, unknown>, events?: EventRecorder): void {
  if (events) {
    events.recordEvent('update', data);
    return;
  }
  mkdirSync(updateDir(dataDir), { recursive: true, mode: 0o750 });
  appendFileSync(journalPath(dataDir), `${JSON.stringify(data)}\n`, { mode: 0o640 });
}

/**
 * Records the journal's events in the store and empties it. The journal is renamed first, so a
 * line appended meanwhile goes to a new journal and is taken next time, never lost or doubled.
 */
export function drainUpdateEvents(dataDir: string, events: EventRecorder): number {
  const file = journalPath(dataDir);
  const taking = `${file}.taking`;
  try {
    renameSync(file, taking);
  } catch {
    // nothing waiting (a .taking left by a crash is taken below)
  }
  let text: string;
  try {
    text = readFileSync(taking, 'utf8');
  } catch {
    return 0;
  }
  let n = 0;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const data = JSON.parse(line) as Record<string, unknown>;
      if (data && typeof data === 'object') {
        events.recordEvent('update', data);
        n++;
      }
    } catch {
      // a line cut by a power loss: nothing to record
    }
  }
  rmSync(taking, { force: true });
  return n;
}
