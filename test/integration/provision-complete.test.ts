import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { makeCertificates } from '../helpers/mosquitto.js';

/**
 * Issue 18: `provision` must not make a bundle that fails at the gateway's first boot. A template
 * written on the laptop names its CA where the laptop keeps it; without --ca the bundle would reach
 * the gateway pointing at a file that is not there.
 */
describe('provision refuses a bundle that names files it does not bring', () => {
  const dir = mkdtempSync(join(tmpdir(), 'langbiang-provision-complete-'));
  const laptop = join(dir, 'home/lan/city');
  mkdirSync(laptop, { recursive: true });
  const certs = makeCertificates(laptop);
  const password = join(laptop, 'mqtt-password');
  writeFileSync(password, 'hunter2-but-longer\n');
  const template = join(dir, 'greenhouse.yaml');
  writeFileSync(
    template,
    `gateway: { id: placeholder, name: "Nhà kính 3" }
buses: []
devices: []
sync:
  url: mqtts://mqtt.city.example:8883
  username: dl-gw-0007
  passwordFile: ${password}
  tls: { ca: ${certs.ca} }
`,
  );

  it('refuses with one line per file, naming the key and the flag to pass; writes nothing', async () => {
    const out = join(dir, 'out-refused');
    mkdirSync(out);
    const r = await runCli(['provision', '--id', 'dl-gw-0007', '--out', out, '--template', template]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `langbiang: this bundle would fail at the gateway's first boot; nothing was written:
  sync.tls.ca: ${certs.ca} is not in the bundle, so the gateway would not find it on first boot; pass --ca FILE
  sync.passwordFile: ${password} is not in the bundle, so the gateway would not find it on first boot; pass --password-file FILE
`,
    );
    expect(existsSync(join(out, 'langbiang'))).toBe(false);
  });

  it('refuses a `!file` value: the file it reads stays on the laptop', async () => {
    const name = join(laptop, 'name.txt');
    writeFileSync(name, 'Nhà kính 3\n');
    const withTag = join(dir, 'with-tag.yaml');
    writeFileSync(
      withTag,
      `gateway: { id: placeholder }
buses:
  - { id: cabinet, type: modbus-tcp, host: !file ${name}, port: 502 }
devices: []
`,
    );
    const out = join(dir, 'out-tag');
    mkdirSync(out);
    const r = await runCli(['provision', '--id', 'dl-gw-0007', '--out', out, '--template', withTag]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `langbiang: this bundle would fail at the gateway's first boot; nothing was written:
  buses.0.host: !file ${name} is read from a file the bundle does not carry; write the value into the template (or, for sync.passwordFile, pass --password-file FILE)
`,
    );
    expect(existsSync(join(out, 'langbiang'))).toBe(false);
  });

  it('makes the bundle when the flags bring the files, and its config names them inside the bundle', async () => {
    const out = join(dir, 'out-ok');
    mkdirSync(out);
    const r = await runCli([
      'provision',
      '--id',
      'dl-gw-0007',
      '--out',
      out,
      '--template',
      template,
      '--sync-url',
      'mqtts://mqtt.city.example:8883',
      '--ca',
      certs.ca,
      '--password-file',
      password,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const config = readFileSync(join(out, 'langbiang/config.yaml'), 'utf8');
    expect(config).toContain('ca: /var/lib/langbiang/secrets/ca.crt');
    expect(config).toContain('passwordFile: /var/lib/langbiang/secrets/mqtt-password');
    expect(existsSync(join(out, 'langbiang/secrets/ca.crt'))).toBe(true);
  });
});
