import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { LangbiangError } from '../core/errors.js';
import { createLogger } from '../log.js';
import { baselineFromHealth, type HealthLike } from '../update/confirm.js';
import { installRootOf } from '../update/layout.js';
import { loadValidConfig } from './config-arg.js';
import { formatUpdateStatus } from './update-format.js';

/**
 * `langbiang update apply FILE` and `langbiang update status`: the technician's way in, on site.
 * The bundle is verified and installed beside the running release and `current` is switched; the
 * running gateway is then restarted (systemctl) so the new release starts and confirms itself.
 */
export interface UpdateDirOptions {
  config?: string;
  dataDir?: string;
  installRoot?: string;
}

const DEFAULT_CONFIG = '/etc/langbiang/config.yaml';

function dataDirOf(o: UpdateDirOptions): string {
  if (o.dataDir && o.config) throw new LangbiangError('USAGE', 'give --data-dir or --config, not both');
  if (o.dataDir) return resolve(o.dataDir);
  const config = o.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
  if (config) return resolve(loadValidConfig(config).gateway.dataDir);
  throw new LangbiangError('USAGE', "say where the gateway's data is: --config FILE or --data-dir DIR");
}

function installRootFor(o: UpdateDirOptions): string {
  if (o.installRoot) return resolve(o.installRoot);
  const root = installRootOf();
  if (!root)
    throw new LangbiangError(
      'USAGE',
      'this langbiang does not run from an install root (releases/<version> with a current link); give --install-root DIR',
    );
  return root;
}

export interface UpdateApplyOptions extends UpdateDirOptions {
  file: string;
  allowDowngrade?: boolean;
  /** false (--no-restart): only say how to start the new release */
  restart?: boolean;
  /** the running gateway's address, for the health the new release must match */
  url?: string;
  /** how the service is restarted (default: systemctl restart langbiang) */
  restartCommand?: string[];
}

/** How long `update apply` waits for the running gateway's /healthz (the new release's baseline). */
const BASELINE_TIMEOUT_MS = 20_000;

export async function runUpdateApply(o: UpdateApplyOptions): Promise<void> {
  const dataDir = dataDirOf(o);
  const installRoot = installRootFor(o);
  const log = createLogger({ level: 'warn', format: 'pretty' });
  const { applyUpdate } = await import('../update/index.js');
  const url = o.url ?? 'http://127.0.0.1:8080';
  const r = await applyUpdate(resolve(o.file), {
    dataDir,
    installRoot,
    log,
    source: 'cli',
    allowDowngrade: o.allowDowngrade === true,
    baseline: async () => {
      // what is healthy under the running release now is what the new one must match. A stopped
      // gateway refuses the connection at once; a running one on a busy device (an update is
      // being unpacked next to it) can take seconds, and giving up on it would judge the new
      // release without a baseline, so the wait is generous.
      try {
        const res = await fetch(new URL('/healthz', url), { signal: AbortSignal.timeout(BASELINE_TIMEOUT_MS) });
        return baselineFromHealth((await res.json()) as HealthLike);
      } catch (err) {
        const why =
          (err as Error).name === 'TimeoutError'
            ? `the gateway at ${url} did not answer /healthz within ${BASELINE_TIMEOUT_MS / 1000} s`
            : `no gateway answers at ${url}`;
        process.stdout.write(`${why}: the new release is judged on its store and buses only\n`);
        return null;
      }
    },
  });
  process.stdout.write(
    `release ${r.version} installed in ${installRoot}/releases/${r.version} (previous ${r.previous ?? 'none'} is kept); current points at it\n`,
  );
  if (o.restart === false) {
    process.stdout.write('start it: systemctl restart langbiang (it must confirm itself, or it is rolled back)\n');
    return;
  }
  const cmd = o.restartCommand ?? ['systemctl', 'restart', 'langbiang'];
  const code = await new Promise<number>((done) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: 'inherit' });
    child.on('error', () => done(127));
    child.on('exit', (c) => done(c ?? 1));
  });
  if (code !== 0)
    throw new LangbiangError(
      'UPDATE_FAILED',
      `release ${r.version} is installed but "${cmd.join(' ')}" failed (exit ${code}); restart the gateway by hand`,
    );
  process.stdout.write(`restarted (${cmd.join(' ')}); follow it with: langbiang update status\n`);
}

export async function runUpdateStatus(o: UpdateDirOptions & { json?: boolean }): Promise<void> {
  const dataDir = dataDirOf(o);
  const installRoot = installRootFor(o);
  const { readUpdateStatus } = await import('../update/index.js');
  const s = readUpdateStatus({ dataDir, installRoot });
  if (o.json) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${formatUpdateStatus(s)}\n`);
}
