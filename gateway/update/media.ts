import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describeError } from '../core/errors.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../provision/files.js';
import { sha256File } from './download.js';
import { MAX_BUNDLE_BYTES } from './order.js';
import { UPDATE_DIR } from './remote.js';

/**
 * A release bundle brought on the boot partition or a USB stick, the way a provisioning bundle
 * is: a technician copies `langbiang-<version>-<arch>.lbr` there; the gateway finds it at start
 * (and every half minute, for a stick plugged in while it runs), checks it with the release key,
 * installs it and restarts into it. Each bundle is tried once: its sha256 is remembered in
 * `<dataDir>/update/media.json` with the outcome, and the file is renamed `….lbr.applied` (or
 * `….lbr.failed`) where the medium is writable — a read-only stick or boot partition is no reason
 * to install the same file at every boot.
 */
export const UPDATE_MEDIA_DIRS = ['/boot/firmware', '/boot', '/media', '/mnt'];
export const MEDIA_SCAN_MS = 30_000;
const MOUNT_FOLDERS = new Set(['media', 'mnt']);
const BUNDLE_NAME = /^langbiang-[A-Za-z0-9._+-]{1,120}\.lbr$/;
const MAX_REMEMBERED = 50;

interface MediaState {
  tried: Array<{ sha256: string; file: string; at: string; outcome: 'installed' | 'failed'; reason?: string }>;
}

export interface MediaOptions {
  dataDir: string;
  log: Logger;
  /** installs one bundle (RemoteUpdater.installLocal); throws when it does not install */
  install: (file: string) => Promise<unknown>;
  /** whether another update runs now (the scan waits for the next round) */
  busy: () => boolean;
  /** where to look; $LANGBIANG_UPDATE_MEDIA (colon-separated) or UPDATE_MEDIA_DIRS */
  dirs?: string[];
}

export function mediaDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return env.LANGBIANG_UPDATE_MEDIA ? env.LANGBIANG_UPDATE_MEDIA.split(':').filter(Boolean) : UPDATE_MEDIA_DIRS;
}

/**
 * Release bundles in a folder and, for /media and /mnt, one and two levels below it (where a
 * desktop or udisks mounts a stick: /media/LABEL, /media/USER/LABEL). Plain files only: a link
 * could point anywhere.
 */
export function findMediaBundles(dirs: string[]): string[] {
  const found: string[] = [];
  const visit = (dir: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const path = join(dir, name);
      let st: ReturnType<typeof lstatSync>;
      try {
        st = lstatSync(path);
      } catch {
        continue;
      }
      if (st.isFile() && BUNDLE_NAME.test(name)) found.push(path);
      else if (st.isDirectory() && depth > 0 && !name.startsWith('.')) visit(path, depth - 1);
    }
  };
  // a mount folder holds sticks one or two levels down; anywhere else (a boot partition, a stick given
  // by path) only the top is looked at
  for (const dir of dirs) visit(dir, MOUNT_FOLDERS.has(basename(dir)) ? 2 : 0);
  return found;
}

export class UpdateMedia {
  private timer: NodeJS.Timeout | null = null;
  private scanning = false;
  /** hashes of files already read, by path, size and time: a bundle left on a stick is hashed once */
  private readonly hashes = new Map<string, { size: number; mtimeMs: number; sha256: string }>();

  constructor(private readonly o: MediaOptions) {}

  start(): void {
    void this.scan();
    this.timer = setInterval(() => void this.scan(), MEDIA_SCAN_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One round: the first bundle not tried before is installed (an install ends in a restart). */
  async scan(): Promise<void> {
    if (this.scanning || this.o.busy()) return;
    this.scanning = true;
    try {
      const state = this.read();
      for (const file of findMediaBundles(this.o.dirs ?? mediaDirs())) {
        // a file larger than any bundle is not one: refused before it is read, so a stick with a
        // huge file cannot keep the gateway hashing it (and a removed one is simply skipped)
        let size: number;
        try {
          size = statSync(file).size;
        } catch {
          continue;
        }
        if (size > MAX_BUNDLE_BYTES) {
          this.o.log.warn(
            { file, size },
            `${file} is larger than a release bundle can be (${MAX_BUNDLE_BYTES} bytes); not read`,
          );
          this.mark(file, 'failed');
          continue;
        }
        let sha: string;
        try {
          sha = await this.hashOf(file);
        } catch {
          continue; // removed while we looked
        }
        if (state.tried.some((t) => t.sha256 === sha)) continue;
        this.o.log.info({ file }, 'release bundle found on a stick or the boot partition; installing it');
        // remembered before the install: a release that does not start must not be installed again
        const entry: MediaState['tried'][number] = {
          sha256: sha,
          file,
          at: new Date().toISOString(),
          outcome: 'failed',
        };
        state.tried.push(entry);
        this.write(state);
        try {
          await this.o.install(file);
          entry.outcome = 'installed';
        } catch (err) {
          entry.reason = describeError(err);
        }
        this.write(state);
        this.mark(file, entry.outcome === 'installed' ? 'applied' : 'failed');
        return;
      }
    } catch (err) {
      this.o.log.warn({ err: describeError(err) }, 'looking for release bundles failed');
    } finally {
      this.scanning = false;
    }
  }

  private async hashOf(file: string): Promise<string> {
    const st = statSync(file);
    const known = this.hashes.get(file);
    if (known && known.size === st.size && known.mtimeMs === st.mtimeMs) return known.sha256;
    const sha256 = await sha256File(file);
    this.hashes.set(file, { size: st.size, mtimeMs: st.mtimeMs, sha256 });
    return sha256;
  }

  /** `….lbr.applied` / `….lbr.failed` where the medium can be written; remembered by hash anyway. */
  private mark(file: string, how: 'applied' | 'failed'): void {
    try {
      renameSync(file, `${file}.${how}`);
    } catch (err) {
      this.o.log.info(
        { file, err: describeError(err) },
        'bundle not renamed (read-only medium); its hash is remembered',
      );
    }
  }

  private read(): MediaState {
    try {
      const s = JSON.parse(readFileSync(join(this.o.dataDir, UPDATE_DIR, 'media.json'), 'utf8')) as MediaState;
      return { tried: Array.isArray(s.tried) ? s.tried : [] };
    } catch {
      return { tried: [] };
    }
  }

  private write(state: MediaState): void {
    const dir = join(this.o.dataDir, UPDATE_DIR);
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    const kept = { tried: state.tried.slice(-MAX_REMEMBERED) };
    writeFileAtomic(join(dir, 'media.json'), `${JSON.stringify(kept, null, 2)}\n`, 0o640);
  }
}
