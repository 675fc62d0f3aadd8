import { LangbiangError } from '../core/errors.js';

export interface ProvisionArgs {
  id?: string;
  out?: string;
  syncUrl?: string;
  template?: string;
  dataDir?: string;
  ca?: string;
  caKey?: string;
  cert?: string;
  key?: string;
  username?: string;
  passwordFile?: string;
  controlKey?: string[];
  days?: string;
  import?: string;
  importBoot?: boolean;
  config?: string;
  owner?: string;
  keep?: boolean;
}

export const DEFAULT_CONFIG_FILE = '/etc/langbiang/config.yaml';

/**
 * `langbiang provision`: on the technician's laptop, make a bundle for a new gateway; on the
 * gateway (first boot, run by the systemd unit as root), import it from the boot partition.
 */
export async function runProvision(o: ProvisionArgs): Promise<void> {
  const { createBundle, findBootBundle, importBundle } = await import('../provision/index.js');
  const modes = [o.id !== undefined || o.out !== undefined, o.import !== undefined, o.importBoot === true].filter(
    Boolean,
  ).length;
  if (modes !== 1) {
    throw new LangbiangError('USAGE', 'use one of: --id ID --out DIR (make a bundle), --import DIR, or --import-boot');
  }

  if (o.import !== undefined || o.importBoot) {
    const bundle = o.import ?? findBootBundle();
    if (bundle === null) {
      // the unit runs this before every start; after the first boot there is simply nothing to do
      process.stdout.write('no provisioning bundle on the boot partition; nothing to import\n');
      return;
    }
    const r = importBundle({
      bundle,
      configFile: o.config ?? DEFAULT_CONFIG_FILE,
      owner: o.owner,
      deleteBundle: !o.keep,
    });
    process.stdout.write(
      `imported the bundle for gateway ${r.gateway}: config → ${r.configFile}; ${r.secrets.length} secret file(s) → ${r.dataDir}/secrets (0600)` +
        `; ${r.controlKeys.length ? `city keys pinned: ${r.controlKeys.join(', ')}` : 'no city key pinned (remote configs and commands will be refused)'}` +
        `${r.bundleDeleted ? `; the bundle was deleted from ${bundle}` : ''}\n`,
    );
    return;
  }

  if (!o.id || !o.out) throw new LangbiangError('USAGE', 'making a bundle needs both --id and --out');
  const days = o.days === undefined ? undefined : Number(o.days);
  if (days !== undefined && !(Number.isInteger(days) && days > 0 && days <= 3650)) {
    throw new LangbiangError('USAGE', `--days must be a whole number of days 1–3650, got ${o.days}`);
  }
  const b = createBundle({
    id: o.id,
    out: o.out,
    syncUrl: o.syncUrl,
    template: o.template,
    dataDir: o.dataDir,
    ca: o.ca,
    caKey: o.caKey,
    cert: o.cert,
    key: o.key,
    username: o.username,
    passwordFile: o.passwordFile,
    controlKeys: o.controlKey,
    days,
  });
  const cert = {
    given: 'the given client certificate',
    'ca-signed': 'a client certificate signed by the given CA',
    'self-signed': 'a self-signed client certificate (secrets/client.csr is there for the city CA to sign)',
    none: 'no client certificate (the broker URL is not TLS)',
  }[b.certificate];
  process.stdout.write(
    [
      `bundle for ${o.id} in ${b.dir}`,
      `  ${b.files.length} files, ${cert}`,
      o.controlKey?.length
        ? `  city control keys pinned: ${o.controlKey.length}`
        : '  no city control key (--control-key): the gateway will refuse configs and commands over MQTT',
      `  copy the folder onto the SD card's boot partition as /boot/firmware/${'langbiang'}/`,
      `  first panel login: open /setup on the gateway and enter the setup code ${b.setupCode}`,
      '',
    ].join('\n'),
  );
}
