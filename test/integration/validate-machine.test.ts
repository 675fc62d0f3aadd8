import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkSerialPorts } from '../../gateway/config/hardware-checks.js';
import { loadConfigOrThrow } from '../../gateway/config/index.js';
import { runCli, startCli } from '../helpers/cli.js';
import { makeCertificates } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';

/**
 * Issue 18: `validate` checks what it can without the hardware — serial ports that do not exist
 * here, TLS files that are not what their key says — and `start` says the same.
 */
describe('validate checks the machine', () => {
  let dir: string;
  let certs: ReturnType<typeof makeCertificates>;
  const write = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  const syncConfig = (name: string, tls: { ca: string; cert: string; key: string }) =>
    write(
      name,
      `gateway: { id: dl-gw-0001, dataDir: ${dir}/data }
buses: []
devices: []
sync:
  url: mqtts://127.0.0.1:8883
  tls: { ca: ${tls.ca}, cert: ${tls.cert}, key: ${tls.key} }
`,
    );

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'langbiang-validate-'));
    const tlsDir = join(dir, 'tls');
    mkdirSync(tlsDir);
    certs = makeCertificates(tlsDir);
  });

  it('warns about a serial port that does not exist, naming the key and its line; exit 0', async () => {
    const port = join(dir, 'ttyUSB0');
    const f = write(
      'absent.yaml',
      `gateway: { id: dl-gw-0001, dataDir: ${dir}/data }
buses:
  - { id: rs485-1, type: modbus-rtu, port: ${port}, baudRate: 4800 }
devices:
  - { id: soil-a1, profile: comwintop-cwt-soil, bus: rs485-1, unit: 1 }
`,
    );
    const r = await runCli(['validate', f]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${f}: valid (1 bus, 1 device)\n`);
    expect(r.stderr).toMatch(
      new RegExp(
        `^warning: buses\\.0\\.port: ${port} does not exist on this machine; (serial adapters on this machine \\(ls /dev/serial/by-id\\): /dev/serial/by-id/\\S+|no serial adapter is plugged in on this machine \\(/dev/serial/by-id is empty or absent\\)) \\(fine if this config is for another machine\\) \\(line 3\\)\n$`,
      ),
    );
  });

  it('lists the adapters that are plugged in (their stable names)', () => {
    const byId = join(dir, 'by-id');
    mkdirSync(byId);
    const tty = join(dir, 'ttyUSB7');
    writeFileSync(tty, '');
    symlinkSync(tty, join(byId, 'usb-FTDI_FT232R_USB_UART_A10K5ZQX-if00-port0'));
    symlinkSync(tty, join(byId, 'usb-1a86_USB_Serial-if00-port0'));
    const f = write(
      'listed.yaml',
      `gateway: { id: dl-gw-0001, dataDir: ${dir}/data }
buses: [{ id: rs485-1, type: modbus-rtu, port: /dev/ttyUSB-nope }]
devices: []
`,
    );
    const { config } = loadConfigOrThrow(f);
    expect(checkSerialPorts(config, byId)).toEqual([
      {
        path: ['buses', 0, 'port'],
        message: `/dev/ttyUSB-nope does not exist on this machine; serial adapters on this machine (ls ${byId}): ${byId}/usb-1a86_USB_Serial-if00-port0, ${byId}/usb-FTDI_FT232R_USB_UART_A10K5ZQX-if00-port0 (fine if this config is for another machine)`,
      },
    ]);
  });

  it('accepts TLS files that parse and match', async () => {
    const f = syncConfig('tls-ok.yaml', { ca: certs.ca, cert: certs.cert, key: certs.key });
    const r = await runCli(['validate', '--config', f]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('refuses a broken CA certificate, naming sync.tls.ca', async () => {
    const pem = readFileSync(certs.ca, 'utf8').split('\n');
    pem[3] = 'this line is not base64 at all!';
    const broken = write('broken-ca.pem', pem.join('\n'));
    const f = syncConfig('tls-broken-ca.yaml', { ca: broken, cert: certs.cert, key: certs.key });
    const r = await runCli(['validate', '--config', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`^sync\\.tls\\.ca: ${broken} is not a valid PEM certificate \\(.+\\) \\(line 6\\)\n$`),
    );
  });

  it('refuses a key where the certificate goes, and a key that is not a key', async () => {
    const garbage = write('garbage.key', 'hello\n');
    const f = syncConfig('tls-swapped.yaml', { ca: certs.ca, cert: certs.key, key: garbage });
    const r = await runCli(['validate', '--config', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `sync.tls.cert: ${certs.key} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line; it holds a private key — swapped with sync.tls.key?) (line 6)\n`,
    );
    expect(r.stderr).toMatch(new RegExp(`sync\\.tls\\.key: ${garbage} is not a PEM private key \\(.+\\) \\(line 6\\)`));
  });

  it('refuses a client key that does not belong to the client certificate', async () => {
    const other = join(dir, 'other');
    mkdirSync(other);
    const otherCerts = makeCertificates(other);
    const f = syncConfig('tls-mismatch.yaml', { ca: certs.ca, cert: certs.cert, key: otherCerts.key });
    const r = await runCli(['validate', '--config', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `sync.tls.key: ${otherCerts.key} does not belong to the certificate in sync.tls.cert (${certs.cert}): the broker would refuse the handshake (line 6)\n`,
    );
  });

  it('start refuses the broken CA with the key named, not only the OpenSSL text', async () => {
    const pem = readFileSync(certs.ca, 'utf8').split('\n');
    pem[2] = '';
    const broken = write('broken-ca-2.pem', pem.join('\n'));
    const f = syncConfig('tls-start.yaml', { ca: broken, cert: certs.cert, key: certs.key });
    const r = await runCli(['start', '--config', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`sync\\.tls\\.ca: ${broken} is not a valid PEM certificate`));
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('start logs every validate warning', async () => {
    const port = join(dir, 'ttyACM9');
    const f = write(
      'start-warn.yaml',
      `gateway: { id: dl-gw-0001, dataDir: ${dir}/data-warn }
buses:
  - { id: rs485-1, type: modbus-rtu, port: ${port} }
devices: []
panel: { port: ${await freePort()}, host: 127.0.0.1 }
`,
    );
    const gw = startCli(['start', '--config', f]);
    try {
      await gw.waitFor('http listening', 20_000);
      expect(gw.output()).toContain(`config warning: buses.0.port: ${port} does not exist on this machine`);
    } finally {
      gw.child.kill('SIGKILL');
    }
  });

  it('start --config with a missing file says so, not "not valid"', async () => {
    const missing = join(dir, 'nope.yaml');
    const r = await runCli(['start', '--config', missing]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`langbiang: ${missing}: cannot read file (ENOENT: no such file or directory)\n`);
  });

  it('validate without a file is a usage error that says how', async () => {
    const r = await runCli(['validate']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('langbiang: validate needs a config: langbiang validate FILE (or --config FILE)\n');
  });
});
