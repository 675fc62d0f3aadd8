import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, posix, resolve } from 'node:path';
import { isMap, parseDocument } from 'yaml';
import { SETUP_CODE_FILE as AUTH_SETUP_CODE_FILE, SetupCode } from '../auth/setup-code.js';
import { gatewayConfigSchema } from '../config/schema.js';
import { describeError, LangbiangError } from '../core/errors.js';
import { KEY_NAME, parsePublicKey } from '../core/signed.js';
import { filesNotInBundle } from './completeness.js';
import { sha256 } from './files.js';
import { certSubject, makeCsr, makeKey, selfSign, signWithCa } from './openssl.js';

/**
 * A provisioning bundle: what a technician copies onto a new gateway's SD card (boot partition,
 * `/boot/firmware/langbiang/`) so that its first start has an identity, a config and the
 * certificates to reach the city. Layout:
 *
 *   langbiang/manifest.json     format, gateway id, data dir, sha256 of every file
 *   langbiang/config.yaml       the gateway's config; secret paths point into <dataDir>/secrets/
 *   langbiang/secrets/…         client.key, client.csr, client.crt, [ca.crt], [mqtt-password], setup-code
 *   langbiang/trust/control/…   NAME.pem: the city's control public keys to pin (not secret)
 *   langbiang/README.txt        for whoever opens the card
 */
export const BUNDLE_DIR = 'langbiang';
export const BUNDLE_FORMAT = 'langbiang-provisioning-bundle';
export const BUNDLE_VERSION = 1;
/** Pinned city control keys, in the bundle and in the data directory (gateway/control-keys.ts). */
export const TRUST_SUBDIR = 'trust/control';
/** Where secrets go in the data directory (shared with gateway/secret-store.ts). */
export const SECRETS_SUBDIR = 'secrets';
/** The first technician's one-time panel setup code, in <dataDir>/secrets/ (where gateway/auth looks). */
export const SETUP_CODE_FILE = AUTH_SETUP_CODE_FILE;

export interface Manifest {
  format: typeof BUNDLE_FORMAT;
  v: number;
  gateway: string;
  dataDir: string;
  createdAt: string;
  /** relative path (posix) → sha256 */
  files: Record<string, string>;
}

export interface CreateBundleOptions {
  id: string;
  out: string;
  syncUrl?: string;
  /** config to start from (YAML); default: a minimal config with no buses */
  template?: string;
  dataDir?: string;
  /** CA certificate the gateway trusts for the broker */
  ca?: string;
  /** an existing client certificate and key to use instead of making them */
  cert?: string;
  key?: string;
  /** the city's provisioning CA key: sign the CSR with it (with ca) */
  caKey?: string;
  username?: string;
  passwordFile?: string;
  days?: number;
  /** the city's control public keys (NAME.pem, Ed25519) to pin: trust/control/NAME.pem in the bundle */
  controlKeys?: string[];
}

export interface CreatedBundle {
  dir: string;
  setupCode: string;
  files: string[];
  certificate: 'given' | 'ca-signed' | 'self-signed' | 'none';
}

const DEFAULT_TEMPLATE = `# Langbiang Edge gateway config (made by \`langbiang provision\`). Reference: docs/config.md.
gateway:
  id: placeholder
buses: []
devices: []
`;

export function createBundle(o: CreateBundleOptions): CreatedBundle {
  const parsedId = gatewayConfigSchema.shape.gateway.safeParse({ id: o.id });
  if (!parsedId.success)
    throw new LangbiangError('USAGE', `--id: ${parsedId.error.issues[0]?.message ?? 'invalid gateway id'}`);
  if ((o.cert === undefined) !== (o.key === undefined))
    throw new LangbiangError('USAGE', '--cert and --key go together');
  if (o.caKey && !o.ca) throw new LangbiangError('USAGE', '--ca-key needs --ca (the CA certificate it belongs to)');
  for (const [flag, f] of [
    ['--config', o.template],
    ['--ca', o.ca],
    ['--cert', o.cert],
    ['--key', o.key],
    ['--ca-key', o.caKey],
    ['--password-file', o.passwordFile],
    ...(o.controlKeys ?? []).map((f) => ['--control-key', f] as const),
  ] as const) {
    if (f !== undefined && !isFile(f)) throw new LangbiangError('USAGE', `${flag}: ${f} is not a readable file`);
  }
  const tls = o.syncUrl !== undefined && /^(mqtts|wss):/.test(o.syncUrl);
  if (o.syncUrl !== undefined && !/^(mqtts?|wss?):\/\//.test(o.syncUrl)) {
    throw new LangbiangError('USAGE', `--sync-url: ${o.syncUrl} is not a broker URL (mqtts://host:8883)`);
  }

  const dir = resolve(o.out, BUNDLE_DIR);
  if (existsSync(dir)) throw new LangbiangError('USAGE', `${dir} already exists; move it away or choose another --out`);
  const secrets = join(dir, SECRETS_SUBDIR);
  mkdirSync(secrets, { recursive: true, mode: 0o700 });
  try {
    const doc = parseDocument(o.template ? readFileSync(o.template, 'utf8') : DEFAULT_TEMPLATE);
    if (doc.errors.length > 0) throw new LangbiangError('CONFIG_INVALID', `--config: ${doc.errors[0]!.message}`);
    if (!isMap(doc.contents)) throw new LangbiangError('CONFIG_INVALID', '--config: not a YAML mapping');
    doc.setIn(['gateway', 'id'], o.id);
    if (o.dataDir) doc.setIn(['gateway', 'dataDir'], o.dataDir);
    const dataDir = String(
      doc.getIn(['gateway', 'dataDir']) ?? gatewayConfigSchema.shape.gateway.parse({ id: o.id }).dataDir,
    );
    const secretPath = (name: string) => posix.join(dataDir, SECRETS_SUBDIR, name);

    let certificate: CreatedBundle['certificate'] = 'none';
    if (tls || o.cert) {
      const key = join(secrets, 'client.key');
      const crt = join(secrets, 'client.crt');
      if (o.cert && o.key) {
        copyFileSync(o.key, key);
        copyFileSync(o.cert, crt);
        certificate = 'given';
      } else {
        const csr = join(secrets, 'client.csr');
        makeKey(key);
        makeCsr(key, csr, o.id);
        if (o.ca && o.caKey) {
          const ext = join(dir, '.client-ext.cnf');
          writeFileSync(ext, 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
          signWithCa(csr, o.ca, o.caKey, crt, o.days ?? 825, ext);
          rmSync(ext);
          certificate = 'ca-signed';
        } else {
          selfSign(key, csr, crt, o.days ?? 825);
          certificate = 'self-signed';
        }
      }
      // a certificate for another gateway would be refused by the broker or, worse, accepted as the other one
      if (
        certificate === 'given' &&
        !certSubject(crt).includes(`CN = ${o.id}`) &&
        !certSubject(crt).includes(`CN=${o.id}`)
      ) {
        throw new LangbiangError('USAGE', `--cert does not name ${o.id} in its subject (${certSubject(crt)})`);
      }
      doc.setIn(['sync', 'tls', 'cert'], secretPath('client.crt'));
      doc.setIn(['sync', 'tls', 'key'], secretPath('client.key'));
    }
    if (o.ca) {
      copyFileSync(o.ca, join(secrets, 'ca.crt'));
      if (tls) doc.setIn(['sync', 'tls', 'ca'], secretPath('ca.crt'));
    }
    if (o.syncUrl) doc.setIn(['sync', 'url'], o.syncUrl);
    if (o.username) doc.setIn(['sync', 'username'], o.username);
    if (o.passwordFile) {
      copyFileSync(o.passwordFile, join(secrets, 'mqtt-password'));
      doc.setIn(['sync', 'passwordFile'], secretPath('mqtt-password'));
    }
    const notBundled = filesNotInBundle(doc, dataDir, secrets);
    if (notBundled.length > 0)
      throw new LangbiangError(
        'USAGE',
        `this bundle would fail at the gateway's first boot; nothing was written:\n${notBundled.map((l) => `  ${l}`).join('\n')}`,
      );
    for (const file of o.controlKeys ?? []) {
      const name = basename(file).replace(/\.pem$/, '');
      if (!KEY_NAME.test(name))
        throw new LangbiangError(
          'USAGE',
          `--control-key: ${file}: the file name must be NAME.pem (letters, digits, . _ -)`,
        );
      const pem = readFileSync(file, 'utf8');
      try {
        parsePublicKey(pem);
      } catch (err) {
        throw new LangbiangError(
          'USAGE',
          `--control-key: ${file} is not an Ed25519 public key (${describeError(err)})`,
        );
      }
      mkdirSync(join(dir, TRUST_SUBDIR), { recursive: true });
      writeFileSync(join(dir, TRUST_SUBDIR, `${name}.pem`), pem);
    }
    const setupCode = new SetupCode().issue().code;
    writeFileSync(join(secrets, SETUP_CODE_FILE), `${setupCode}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'config.yaml'), doc.toString());
    writeFileSync(join(dir, 'README.txt'), readme(o.id));

    const files: Record<string, string> = {};
    for (const rel of listFiles(dir))
      if (rel !== 'manifest.json' && rel !== 'README.txt') files[rel] = sha256(readFileSync(join(dir, rel)));
    const manifest: Manifest = {
      format: BUNDLE_FORMAT,
      v: BUNDLE_VERSION,
      gateway: o.id,
      dataDir,
      createdAt: new Date().toISOString(),
      files,
    };
    writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    return { dir, setupCode, files: Object.keys(files).sort(), certificate };
  } catch (err) {
    // a half-made bundle must not be copied onto a card by mistake
    rmSync(dir, { recursive: true, force: true });
    if (err instanceof LangbiangError) throw err;
    throw new LangbiangError('INTERNAL', `cannot make the bundle: ${describeError(err)}`);
  }
}

function isFile(f: string): boolean {
  try {
    return statSync(f).isFile();
  } catch {
    return false;
  }
}

/** Every regular file under dir, as posix paths relative to it. */
export function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, rel));
    else if (e.isFile()) out.push(rel);
  }
  return out.sort();
}

function readme(id: string): string {
  return `Langbiang Edge provisioning bundle for gateway ${id}

Copy this whole "langbiang" folder onto the SD card's boot partition (the FAT partition the
computer shows as "bootfs"), so that it ends up as /boot/firmware/langbiang/ on the gateway.
On its first start the gateway imports it: the config goes to /etc/langbiang/config.yaml, the
keys and the setup code into its data directory (readable by the gateway only), and this folder
is deleted from the card.

The files under secrets/ are secret: keep this folder off shared drives and delete your copy
once the gateway is running.
`;
}
