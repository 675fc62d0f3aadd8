import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-prov-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const mode = (f: string) => statSync(f).mode & 0o777;
const isRoot = process.getuid?.() === 0;

function openssl(args: string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`openssl ${args[0]} failed (is the Debian package openssl installed?): ${r.stderr}`);
}

/** A city CA, a bundle signed by it, copied onto a stand-in for the SD card's boot partition. */
async function makeBundleOnCard(): Promise<{ boot: string; data: string; etc: string; setupCode: string }> {
  const ca = join(dir, 'ca');
  mkdirSync(ca);
  const keys = join(dir, 'city-keys');
  const kg = await runCli(['city', 'keygen', 'city-ops', '--out', keys]);
  expect(kg.code, kg.stderr).toBe(0);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    join(ca, 'ca.key'),
    '-out',
    join(ca, 'ca.crt'),
    '-days',
    '30',
    '-subj',
    '/CN=Test City CA',
  ]);
  const data = join(dir, 'var/lib/langbiang');
  const laptop = join(dir, 'laptop');
  mkdirSync(laptop);
  const r = await runCli([
    'provision',
    '--id',
    'dl-gw-0042',
    '--out',
    laptop,
    '--sync-url',
    'mqtts://127.0.0.1:8883',
    '--ca',
    join(ca, 'ca.crt'),
    '--ca-key',
    join(ca, 'ca.key'),
    '--data-dir',
    data,
    '--control-key',
    join(keys, 'city-ops.pem'),
  ]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const setupCode = /setup code ([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})/.exec(r.stdout)?.[1];
  expect(setupCode, r.stdout).toBeTruthy();
  // the client certificate is signed by the city CA and names the gateway
  const v = spawnSync(
    'openssl',
    ['verify', '-CAfile', join(ca, 'ca.crt'), join(laptop, 'langbiang/secrets/client.crt')],
    { encoding: 'utf8' },
  );
  expect(v.stdout.trim()).toMatch(/: OK$/);
  const subj = spawnSync(
    'openssl',
    ['x509', '-in', join(laptop, 'langbiang/secrets/client.crt'), '-noout', '-subject'],
    { encoding: 'utf8' },
  );
  expect(subj.stdout).toContain('dl-gw-0042');
  const boot = join(dir, 'boot/firmware');
  mkdirSync(boot, { recursive: true });
  cpSync(join(laptop, 'langbiang'), join(boot, 'langbiang'), { recursive: true });
  return { boot: join(boot, 'langbiang'), data, etc: join(dir, 'etc/langbiang'), setupCode: setupCode! };
}

describe('provisioning bundle: make on the laptop, import on first boot', () => {
  it('imports: secrets into the data dir with mode 0600, config in place, boot copy deleted', async () => {
    const { boot, data, etc, setupCode } = await makeBundleOnCard();
    const config = join(etc, 'config.yaml');
    const owner = isRoot ? ['--owner', 'nobody'] : [];
    const r = await runCli(['provision', '--import', boot, '--config', config, ...owner]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('imported the bundle for gateway dl-gw-0042');

    expect(existsSync(boot)).toBe(false); // no key left on the boot partition
    const secrets = join(data, 'secrets');
    expect(mode(secrets)).toBe(0o700);
    for (const f of ['client.key', 'client.crt', 'client.csr', 'ca.crt', 'setup-code']) {
      expect(mode(join(secrets, f)), f).toBe(0o600);
    }
    expect(readFileSync(join(secrets, 'setup-code'), 'utf8').trim()).toBe(setupCode);
    expect(readFileSync(join(secrets, 'client.key'), 'utf8')).toMatch(/BEGIN PRIVATE KEY/);
    expect(mode(config)).toBe(0o640);
    if (isRoot) {
      const nobody = spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim();
      expect(String(statSync(join(secrets, 'client.key')).uid)).toBe(nobody);
      expect(String(statSync(secrets).uid)).toBe(nobody);
      expect(statSync(config).uid).toBe(0); // the service reads its config, it does not own it
    }
    const text = readFileSync(config, 'utf8');
    expect(text).toContain(`key: ${join(secrets, 'client.key')}`);
    expect(text).toContain('url: mqtts://127.0.0.1:8883');
    expect(JSON.parse(readFileSync(join(data, 'provisioned.json'), 'utf8')).gateway).toBe('dl-gw-0042');
    // the imported config is valid as the gateway will read it, TLS files and all
    const val = await runCli(['validate', '--config', config]);
    expect(val.stderr).toBe('');
    expect(val.code).toBe(0);
  });

  it('is idempotent: a second import finds nothing and changes nothing; the same bundle twice gives the same result', async () => {
    const { boot, data, etc } = await makeBundleOnCard();
    const config = join(etc, 'config.yaml');
    const keep = await runCli(['provision', '--import', boot, '--config', config, '--keep']);
    expect(keep.code).toBe(0);
    expect(existsSync(boot)).toBe(true);
    const key1 = readFileSync(join(data, 'secrets/client.key'));
    const again = await runCli(['provision', '--import', boot, '--config', config]);
    expect(again.code).toBe(0);
    expect(readFileSync(join(data, 'secrets/client.key')).equals(key1)).toBe(true);
    expect(existsSync(boot)).toBe(false);
    // what the systemd unit runs before every start: nothing on the card any more
    const boot2 = await runCli(['provision', '--import-boot', '--config', config], {
      env: { LANGBIANG_BOOT_BUNDLE: boot },
    });
    expect(boot2.code).toBe(0);
    expect(boot2.stdout).toContain('nothing to import');
    expect(readFileSync(join(data, 'secrets/client.key')).equals(key1)).toBe(true);
  });

  it('refuses a bundle with a broken config, with a clear message, leaves the gateway alone and no secret on the boot partition', async () => {
    const { boot, data, etc } = await makeBundleOnCard();
    const cfg = join(boot, 'config.yaml');
    writeFileSync(
      cfg,
      `${readFileSync(cfg, 'utf8')}buses:\n  - { id: rs485-1, type: modbus-rtux, port: /dev/ttyUSB0 }\n`.replace(
        'buses: []\n',
        '',
      ),
    );
    // a technician's edit, with the manifest updated: the config itself is what is wrong
    const manifest = JSON.parse(readFileSync(join(boot, 'manifest.json'), 'utf8'));
    manifest.files['config.yaml'] = createHash('sha256').update(readFileSync(cfg)).digest('hex');
    writeFileSync(join(boot, 'manifest.json'), JSON.stringify(manifest));
    const config = join(etc, 'config.yaml');
    const r = await runCli(['provision', '--import', boot, '--config', config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the bundle's config is invalid; nothing was imported and the bundle was left in /);
    expect(r.stderr).toMatch(/buses\.0\.type/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    // the boot partition is readable by anyone: the failed bundle stays, its secrets do not
    expect(r.stderr).toMatch(/Its secrets \(keys, passwords, setup code\) were deleted from /);
    expect(existsSync(join(boot, 'secrets'))).toBe(false);
    expect(existsSync(join(boot, 'config.yaml'))).toBe(true);
    expect(existsSync(config)).toBe(false);
    expect(existsSync(join(data, 'secrets'))).toBe(false);
  });

  it('refuses a damaged bundle (a file cut short on the card)', async () => {
    const { boot, etc } = await makeBundleOnCard();
    const key = join(boot, 'secrets/client.key');
    writeFileSync(key, readFileSync(key, 'utf8').slice(0, 40));
    const r = await runCli(['provision', '--import', boot, '--config', join(etc, 'config.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('secrets/client.key is damaged (checksum mismatch); nothing was changed');
    expect(existsSync(key)).toBe(false);
  });

  it('pins the city control keys of the bundle in the data directory', async () => {
    const { boot, data, etc } = await makeBundleOnCard();
    const r = await runCli(['provision', '--import', boot, '--config', join(etc, 'config.yaml')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('city keys pinned: city-ops');
    expect(readFileSync(join(data, 'trust/control/city-ops.pem'), 'utf8')).toBe(
      readFileSync(join(dir, 'city-keys/city-ops.pem'), 'utf8'),
    );
  });

  it('follows no symbolic link in the data directory (the service user owns it; the import runs as root)', async () => {
    const { boot, data, etc } = await makeBundleOnCard();
    // the service user, compromised, points secrets/ somewhere it may not write
    const elsewhere = join(dir, 'etc-shadow-dir');
    mkdirSync(elsewhere, { mode: 0o755 });
    mkdirSync(data, { recursive: true });
    symlinkSync(elsewhere, join(data, 'secrets'));
    const r = await runCli(['provision', '--import', boot, '--config', join(etc, 'config.yaml'), '--keep']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/secrets is a symbolic link; refusing to write through it/);
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(mode(elsewhere)).toBe(0o755);
    // without the link, the same import goes through
    rmSync(join(data, 'secrets'));
    const ok = await runCli(['provision', '--import', boot, '--config', join(etc, 'config.yaml')]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(mode(join(data, 'secrets'))).toBe(0o700);
  });

  it('`langbiang start` imports a bundle it finds on the boot partition, then runs with it', async () => {
    const etc = join(dir, 'etc/langbiang');
    const data = join(dir, 'data');
    const laptop = join(dir, 'laptop');
    mkdirSync(laptop);
    const template = join(dir, 'template.yaml');
    writeFileSync(template, 'gateway: { id: x }\npanel: { port: 1, host: 127.0.0.1 }\n');
    const made = await runCli([
      'provision',
      '--id',
      'dl-gw-0043',
      '--out',
      laptop,
      '--template',
      template,
      '--data-dir',
      data,
    ]);
    expect(made.code).toBe(0);
    // panel port 1 is privileged/unusable: pick a real free one in the bundle's config
    const { freePort } = await import('../helpers/ports.js');
    const port = await freePort();
    const cfg = join(laptop, 'langbiang/config.yaml');
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('port: 1,', `port: ${port},`));
    const manifest = JSON.parse(readFileSync(join(laptop, 'langbiang/manifest.json'), 'utf8'));
    manifest.files['config.yaml'] = createHash('sha256').update(readFileSync(cfg)).digest('hex');
    writeFileSync(join(laptop, 'langbiang/manifest.json'), JSON.stringify(manifest));
    const { startCli } = await import('../helpers/cli.js');
    const gw = startCli(['start', '--config', join(etc, 'config.yaml')], {
      env: { LANGBIANG_BOOT_BUNDLE: join(laptop, 'langbiang') },
    });
    try {
      await gw.waitFor('http listening', 20_000);
      expect(gw.output()).toContain('provisioning bundle imported');
      expect(existsSync(join(laptop, 'langbiang'))).toBe(false);
      expect(mode(join(data, 'secrets/setup-code'))).toBe(0o600);
      const health = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { gateway: string };
      expect(health.gateway).toBe('dl-gw-0043');
      // the code printed when the bundle was made logs the first technician in; its value is never logged
      const code = /setup code ([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})/.exec(made.stdout)?.[1];
      expect(code, made.stdout).toBeTruthy();
      expect(gw.output()).toContain('a provisioned setup code is present');
      const { ApiClient } = await import('../helpers/http-client.js');
      const c = new ApiClient(`http://127.0.0.1:${port}`);
      const wrong = await c.post('/api/setup', { code: 'AAAA-BBBB-CCCC', user: 'lan', password: 'ky-thuat-vien' });
      expect(wrong.status).toBe(403);
      expect(existsSync(join(data, 'secrets/setup-code'))).toBe(true);
      const ok = await c.post('/api/setup', { code: code!, user: 'lan', password: 'ky-thuat-vien' });
      expect(ok.status, ok.text).toBe(200);
      expect(ok.body).toMatchObject({ user: 'lan', role: 'technician' });
      expect(existsSync(join(data, 'secrets/setup-code'))).toBe(false);
      expect((await c.get('/api/session')).body.user).toBe('lan');
      await gw.waitFor('the provisioned setup code was used', 10_000);
      expect(gw.output()).not.toContain(code!);
      expect(gw.output()).not.toContain(code!.replace(/-/g, ''));
    } finally {
      gw.child.kill('SIGKILL');
    }
  });

  it('making a bundle refuses bad input with one clear line', async () => {
    const bad = await runCli(['provision', '--id', 'Not Valid', '--out', dir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^langbiang: --id: .*not a valid gateway id/);
    const url = await runCli(['provision', '--id', 'gw-1', '--out', dir, '--sync-url', 'http://x']);
    expect(url.stderr).toMatch(/--sync-url: http:\/\/x is not a broker URL/);
    const both = await runCli(['provision', '--id', 'gw-1', '--out', dir, '--import', dir]);
    expect(both.stderr).toMatch(/use one of/);
    expect(existsSync(join(dir, 'langbiang'))).toBe(false);
  });
});
