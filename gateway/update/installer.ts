import { join } from 'node:path';
import { LangbiangError } from '../core/errors.js';
import type { EventRecorder } from '../core/outbox.js';
import type { Logger } from '../log.js';
import type { UpdateContext } from './types.js';

/**
 * What the ways in (the city's order, the console's upload, a USB stick) need of the installer —
 * the bundle's release-key check, the side-by-side install and the switch of `current` live in
 * this folder's index.ts (`verifyBundle`, `applyUpdate`, `readUpdateStatus`), loaded on first
 * need so a gateway that is never updated does not hold that code.
 */
export interface UpdateInstaller {
  /** the version this process runs (null: not a release install, e.g. a development checkout) */
  runningVersion(): string | null;
  /** the release key's check of a bundle; throws a LangbiangError whose message says why */
  verify(bundlePath: string): Promise<{ version: string }>;
  /**
   * install beside the running release and switch `current` (the installer records the
   * `installed` or `refused` event itself); the caller then stops with restartExitCode
   */
  apply(bundlePath: string, source: string): Promise<{ version: string; previous: string | null }>;
  /** a gateway that switched `current` stops with it; systemd starts the new release */
  readonly restartExitCode: number;
}

export interface InstallerContext {
  dataDir: string;
  log: Logger;
  events?: EventRecorder;
  /** where releases/ and current are (default: the install root this code runs in, see layout.ts) */
  installRoot?: string;
  /** overrides for tests and the gateway (the running release's health baseline, …) */
  context?: Partial<UpdateContext>;
}

/** The real installer (./index.ts) behind the small interface above. */
export async function loadInstaller(o: InstallerContext): Promise<UpdateInstaller> {
  const core = await import('./index.js');
  const { isVersion } = await import('./version.js');
  const { installRootOf } = await import('./layout.js');
  const root = o.installRoot ?? process.env.LANGBIANG_INSTALL_ROOT ?? installRootOf();
  const ctx: UpdateContext = {
    dataDir: o.dataDir,
    // a checkout (not releases/<version> under a current link) can check a bundle, not install one
    installRoot: root ?? join(o.dataDir, 'update', 'no-install-root'),
    log: o.log,
    ...(o.events ? { events: o.events } : {}),
    ...o.context,
  };
  return {
    runningVersion: () => {
      const running = core.readUpdateStatus(ctx).running;
      return isVersion(running) ? running : null;
    },
    verify: (p) => core.verifyBundle(p, ctx),
    apply: async (p, source) => {
      if (!root) {
        const e = new LangbiangError(
          'UPDATE_FAILED',
          'this gateway does not run from an install root (releases/<version> with a current link), so it cannot install a release',
        );
        // the installer's own events say why, as applyUpdate's do
        o.events?.recordEvent('update', { outcome: 'refused', reason: e.code, message: e.message, source });
        throw e;
      }
      return core.applyUpdate(p, { ...ctx, source });
    },
    restartExitCode: core.UPDATE_RESTART_EXIT_CODE,
  };
}
