import { LangbiangError } from '../core/errors.js';

/** `langbiang release pack`: a signed release bundle of this checkout for one architecture. */
export async function runReleasePack(o: {
  key?: string;
  keyName?: string;
  out?: string;
  version?: string;
  arch?: string;
  reuseModules?: boolean;
}): Promise<void> {
  if (!o.key) throw new LangbiangError('USAGE', 'release pack needs --key FILE (the release private key)');
  const { packRelease } = await import('../update/pack.js');
  const r = packRelease({
    keyFile: o.key,
    keyName: o.keyName,
    out: o.out,
    version: o.version,
    arch: o.arch,
    reuseModules: o.reuseModules === true,
  });
  const mb = (r.bytes / 1024 / 1024).toFixed(1);
  process.stdout.write(
    `${r.file}: release ${r.manifest.version} for linux-${r.manifest.arch}, ${r.manifest.files.length} files, ${mb} MB, ` +
      `${r.manifest.modules.included ? 'with node_modules' : 'reusing the installed node_modules (same package-lock.json)'}, signed by ${r.manifest.key}\n`,
  );
}
