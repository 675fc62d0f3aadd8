import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../gateway/log.js';
import { Store } from '../../gateway/store/index.js';
import { loadInstaller } from '../../gateway/update/installer.js';
import { findMediaBundles, UpdateMedia } from '../../gateway/update/media.js';
import { MAX_BUNDLE_BYTES } from '../../gateway/update/order.js';
import { RemoteUpdater } from '../../gateway/update/remote.js';

/**
 * A release bundle on the boot partition or a USB stick: found where sticks are mounted, tried
 * once (remembered by hash, renamed where the medium is writable), never followed through a link.
 */
const log = createLogger({ level: 'silent', format: 'json' });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'lb-media-'));
  dirs.push(d);
  return d;
}

describe('release bundles on a stick or the boot partition', () => {
  it('finds bundles at the top of the boot partition and up to two levels under a mount folder, never through a link', () => {
    const root = tmp();
    const boot = path.join(root, 'boot');
    const media = path.join(root, 'media');
    mkdirSync(path.join(boot, 'deeper'), { recursive: true });
    mkdirSync(path.join(media, 'pi', 'STICK', 'too-deep'), { recursive: true });
    writeFileSync(path.join(boot, 'langbiang-1.4.0-arm64.lbr'), 'a');
    writeFileSync(path.join(boot, 'deeper', 'langbiang-1.4.1-arm64.lbr'), 'b'); // below the boot partition's top
    writeFileSync(path.join(media, 'pi', 'STICK', 'langbiang-1.5.0-arm64.lbr'), 'c');
    writeFileSync(path.join(media, 'pi', 'STICK', 'too-deep', 'langbiang-1.6.0-arm64.lbr'), 'd');
    writeFileSync(path.join(media, 'pi', 'STICK', 'notes.txt'), 'e');
    symlinkSync('/etc/passwd', path.join(media, 'pi', 'STICK', 'langbiang-evil.lbr'));
    // the boot partition's own name is in the list as given (no depth)
    const found = findMediaBundles([path.join(root, 'boot'), media]);
    expect(found).toEqual([
      path.join(boot, 'langbiang-1.4.0-arm64.lbr'),
      path.join(media, 'pi', 'STICK', 'langbiang-1.5.0-arm64.lbr'),
    ]);
  });

  it('installs a bundle once: renamed .applied, remembered by hash when the same bytes come back', async () => {
    const dataDir = tmp();
    const stick = tmp();
    const bytes = randomBytes(10_000);
    const file = path.join(stick, 'langbiang-1.4.0-x64.lbr');
    writeFileSync(file, bytes);
    const installed: Buffer[] = [];
    const media = new UpdateMedia({
      dataDir,
      log,
      dirs: [stick],
      busy: () => false,
      install: async (f) => {
        installed.push(readFileSync(f));
      },
    });
    await media.scan();
    expect(installed).toHaveLength(1);
    expect(installed[0]!.equals(bytes)).toBe(true);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(`${file}.applied`)).toBe(true);
    // a read-only stick cannot be renamed: the same file is still there at the next boot
    copyFileSync(`${file}.applied`, file);
    await media.scan();
    expect(installed).toHaveLength(1);
    const state = JSON.parse(readFileSync(path.join(dataDir, 'update', 'media.json'), 'utf8'));
    expect(state.tried).toHaveLength(1);
    expect(state.tried[0]).toMatchObject({ outcome: 'installed', file });
  });

  it('a bundle that is not a release is refused by the real installer with an event, marked .failed and not tried again', async () => {
    const dataDir = tmp();
    const stick = tmp();
    const store = Store.open({ dataDir });
    try {
      const updater = new RemoteUpdater({
        gatewayId: 'dl-gw-usb',
        dataDir,
        keys: () => new Map(),
        installer: () => loadInstaller({ dataDir, log, installRoot: path.join(dataDir, 'opt') }),
        events: store,
        log,
        onInstalled: () => {
          throw new Error('must not install');
        },
      });
      const file = path.join(stick, 'langbiang-1.4.0-x64.lbr');
      writeFileSync(file, randomBytes(5000));
      let installs = 0;
      const media = new UpdateMedia({
        dataDir,
        log,
        dirs: [stick],
        busy: () => updater.status().busy,
        install: (f) => {
          installs++;
          return updater.installLocal(f, 'usb', 'usb');
        },
      });
      await media.scan();
      await media.scan();
      expect(installs).toBe(1);
      expect(existsSync(`${file}.failed`)).toBe(true);
      const events = store.eventsAfter(0, 100).filter((e) => e.kind === 'update');
      expect(events).toHaveLength(1);
      expect(events[0]!.data).toMatchObject({ outcome: 'failed', source: 'usb' });
      const state = JSON.parse(readFileSync(path.join(dataDir, 'update', 'media.json'), 'utf8'));
      expect(state.tried[0].outcome).toBe('failed');
      expect(String(state.tried[0].reason).length).toBeGreaterThan(5);
    } finally {
      store.close();
    }
  });

  it('a file larger than any bundle is neither read nor installed, and is marked .failed', async () => {
    const dataDir = tmp();
    const stick = tmp();
    const file = path.join(stick, 'langbiang-9.9.9-x64.lbr');
    writeFileSync(file, '');
    truncateSync(file, MAX_BUNDLE_BYTES + 1); // sparse: costs no disk, but hashing it reads a gigabyte
    const small = path.join(stick, 'langbiang-9.9.99-x64.lbr');
    writeFileSync(small, randomBytes(1000));
    const installed: string[] = [];
    const media = new UpdateMedia({
      dataDir,
      log,
      dirs: [stick],
      busy: () => false,
      install: async (f) => {
        installed.push(f);
      },
    });
    await media.scan();
    await media.scan();
    // the huge one is skipped without a try; the next bundle on the stick is still found
    expect(installed).toEqual([small]);
    expect(existsSync(`${file}.failed`)).toBe(true);
    const state = JSON.parse(readFileSync(path.join(dataDir, 'update', 'media.json'), 'utf8'));
    expect(state.tried.map((t: { file: string }) => t.file)).toEqual([small]);
  });
});
