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
   * `installed` or `failed` event itself); the caller then stops with restartExitCode
   */
  apply(bundlePath: string, source: string): Promise<{ version: string; previous: string | null }>;
  /** a gateway that switched `current` stops with it; systemd starts the new release */
  readonly restartExitCode: number;
  /** the releases here and the last update's outcome (the retained status, the console) */
  status(): InstalledStatus;
}

export interface InstalledStatus {
  running: string;
  previous: string | null;
  /** the running release passed its health window (or was never on probation) */
  confirmed: boolean;
  last?: { outcome: string; version: string; at: string; reason?: string };
}

export interface InstallerContext {
  dataDir: string;
  log: Logger;
  events?: EventRecorder;
  /** where releases/ and current are ($LANGBIANG_INSTALL_ROOT, else the folder above the running release) */
  installRoot?: string;
  /** overrides for tests and the gateway (the running release's health baseline, …) */
  context?: Partial<UpdateContext>;
}

/** The real installer (./index.ts) behind the small interface above. */
export async function loadInstaller(o: InstallerContext): Promise<UpdateInstaller> {
  const core = await import('./index.js');
  const { isVersion } = await import('./version.js');
  const ctx: UpdateContext = {
    dataDir: o.dataDir,
    installRoot: o.installRoot ?? defaultInstallRoot(),
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
    apply: (p, source) => core.applyUpdate(p, { ...ctx, source }),
    restartExitCode: core.UPDATE_RESTART_EXIT_CODE,
    status: () => {
      const s = core.readUpdateStatus(ctx);
      return {
        running: s.running,
        previous: s.previous,
        // a release installed and not yet through its health window is on probation
        confirmed: s.pending?.version !== s.running,
        ...(s.last ? { last: s.last } : {}),
      };
    },
  };
}

/**
 * A release runs from `<installRoot>/releases/<version>/` (through `<installRoot>/current`), so
 * the root is two folders above the running code's package; $LANGBIANG_INSTALL_ROOT says it outright.
 */
function defaultInstallRoot(): string {
  if (process.env.LANGBIANG_INSTALL_ROOT) return process.env.LANGBIANG_INSTALL_ROOT;
  return new URL('../../../../..', import.meta.url).pathname.replace(/\/$/, '') || '/opt/langbiang';
}
