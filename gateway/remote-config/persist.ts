import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sha256, writeFileAtomic } from '../provision/files.js';

/**
 * What survives a restart of the config-apply machinery, all under `<dataDir>/remote-config/`
 * (the root filesystem may be read-only; the config file in /etc is never rewritten):
 *
 *   state.json    { applied: { version, appliedAt, baseHash } | null, lastSeenVersion, pending }
 *   active.yaml   the applied config, used instead of the base file while the base is unchanged
 *   pending.yaml  the config under watch; found at start, it means the process died watching it
 */
export const REMOTE_CONFIG_DIR = 'remote-config';

export interface AppliedConfig {
  version: number;
  appliedAt: string;
  /** sha256 of the base config file when this was applied: a technician's later edit wins */
  baseHash: string | null;
  source: string;
  actor: string;
}

export interface PendingConfig {
  version: number | null;
  startedAt: string;
  source: string;
  actor: string;
}

export interface RemoteConfigState {
  applied: AppliedConfig | null;
  /** highest version ever tried (applied or rolled back); lower or equal ones are ignored */
  lastSeenVersion: number;
  /** sha256 of the signed message that carried lastSeenVersion: only that one is a harmless repeat */
  lastSeenDigest?: string | null;
  pending: PendingConfig | null;
}

const EMPTY: RemoteConfigState = { applied: null, lastSeenVersion: 0, pending: null };

export class RemoteConfigFiles {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, REMOTE_CONFIG_DIR);
  }

  read(): RemoteConfigState {
    try {
      const s = JSON.parse(readFileSync(join(this.dir, 'state.json'), 'utf8')) as Partial<RemoteConfigState>;
      return { ...EMPTY, ...s };
    } catch {
      return { ...EMPTY };
    }
  }

  write(state: RemoteConfigState): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o750 });
    writeFileAtomic(join(this.dir, 'state.json'), `${JSON.stringify(state, null, 2)}\n`, 0o640);
  }

  activeText(): string | null {
    return readOrNull(join(this.dir, 'active.yaml'));
  }

  pendingText(): string | null {
    return readOrNull(join(this.dir, 'pending.yaml'));
  }

  /** Before the swap: the config under watch is on disk, so a crash mid-watch is known at start. */
  begin(state: RemoteConfigState, pending: PendingConfig, text: string, digest?: string): RemoteConfigState {
    mkdirSync(this.dir, { recursive: true, mode: 0o750 });
    writeFileAtomic(join(this.dir, 'pending.yaml'), text, 0o640);
    const newer = pending.version !== null && pending.version > state.lastSeenVersion;
    const next = {
      ...state,
      pending,
      ...(newer ? { lastSeenVersion: pending.version as number, lastSeenDigest: digest ?? null } : {}),
    };
    this.write(next);
    return next;
  }

  /** The watch passed: the pending config becomes the one the gateway starts with. */
  commit(state: RemoteConfigState, applied: AppliedConfig, text: string): RemoteConfigState {
    writeFileAtomic(join(this.dir, 'active.yaml'), text, 0o640);
    const next = { ...state, applied, pending: null };
    this.write(next);
    rmSync(join(this.dir, 'pending.yaml'), { force: true });
    return next;
  }

  /** Rolled back (or found half-done at start): the previous config stays the one to start with. */
  abort(state: RemoteConfigState): RemoteConfigState {
    const next = { ...state, pending: null };
    this.write(next);
    rmSync(join(this.dir, 'pending.yaml'), { force: true });
    return next;
  }

  /** The base file was edited on site after a remote apply: forget the applied one. */
  dropApplied(state: RemoteConfigState): RemoteConfigState {
    const next = { ...state, applied: null };
    this.write(next);
    rmSync(join(this.dir, 'active.yaml'), { force: true });
    return next;
  }

  exists(): boolean {
    return existsSync(join(this.dir, 'state.json'));
  }
}

export function baseHashOf(file: string | null): string | null {
  if (!file) return null;
  try {
    return sha256(readFileSync(file));
  } catch {
    return null;
  }
}

function readOrNull(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}
