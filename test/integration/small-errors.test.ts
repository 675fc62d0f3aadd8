import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Store } from '../../gateway/store/index.js';
import { runCli } from '../helpers/cli.js';

/** Issue 18, point 7: the small things, each with the error a technician would want. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'langbiang-small-'));
const write = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};

describe('the small errors of issue 18', () => {
  it('a tab in the YAML is one line with the fix, not four confusing ones', async () => {
    const f = write(
      'tab.yaml',
      'gateway: { id: dl-gw-0001 }\nbuses:\n  - id: a\n\ttype: modbus-tcp\n  - id: b\ndevices: []\n',
    );
    const r = await runCli(['validate', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `${f}: line 4, column 1: Tabs are not allowed as indentation (indent with spaces: YAML forbids tabs there)\n`,
    );
  });

  it('the shipped deploy/config.example.yaml passes its own check (only the placeholder port is warned about)', async () => {
    const f = join(ROOT, 'deploy/config.example.yaml');
    const r = await runCli(['validate', f]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${f}: valid (1 bus, 1 device)\n`);
    const warnings = r.stderr.trim().split('\n');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^warning: buses\.0\.port: \/dev\/serial\/by-id\/usb-FTDI_FT232R_USB_UART_XXXXXXXX-if00-port0 does not exist on this machine; /,
    );
  });

  it('`interval: 1M` says that units are lower case', async () => {
    const f = write(
      'month.yaml',
      `gateway: { id: dl-gw-0001, dataDir: ${dir}/data }
buses: [{ id: t, type: modbus-tcp, host: 127.0.0.1, port: 502 }]
devices: [{ id: a, profile: xy-md02, bus: t, unit: 1, interval: 1M }]
`,
    );
    const r = await runCli(['validate', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'devices.0.interval: "1M" is not a duration (use e.g. 500ms, 30s, 5m, 2h, 90d); units are lower case: ms, s, m (minutes), h, d, w — did you mean "1m"? (line 3)\n',
    );
  });

  it('the shipped JSON Schema offers only the sync formats validate accepts', () => {
    const schema = JSON.parse(readFileSync(join(ROOT, 'schema/langbiang-config.schema.json'), 'utf8'));
    const format = schema.properties.sync.properties.format;
    expect(format.enum).toEqual(['native', 'thingsboard', 'sparkplug']);
  });

  it('`export --device nope` is an error naming the devices the store has, not a header and exit 0', async () => {
    const data = join(dir, 'gw-data');
    const store = Store.open({ dataDir: data });
    const base = { quality: 'good' as const, mono: 0, bootId: 'b', synced: true };
    store.append([
      { ...base, device: 'soil-a1', point: 'moisture', value: 31.5, unit: '%', ts: Date.now() - 1000 },
      { ...base, device: 'climate-1', point: 'temperature', value: 24.1, unit: '°C', ts: Date.now() - 900 },
    ]);
    store.flush();
    store.close();
    const r = await runCli(['export', '--data-dir', data, '--device', 'nope']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'langbiang: --device nope: this store has no readings of that device (devices: climate-1, soil-a1)\n',
    );
    const ok = await runCli(['export', '--data-dir', data, '--device', 'soil-a1', '--from', '-5m']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim().split('\n')).toHaveLength(2);
  });

  it('`export --events` on a gateway gives its events (command audit, gaps…), filtered by kind', async () => {
    const data = join(dir, 'gw-events');
    const store = Store.open({ dataDir: data });
    store.recordEvent('command', { device: 'valves', point: 'relay_1', value: true, actor: 'lan' });
    store.recordEvent('config', { outcome: 'applied' });
    store.close();
    const all = await runCli(['export', '--data-dir', data, '--events']);
    expect(all.code, all.stderr).toBe(0);
    const lines = all.stdout.trim().split('\n');
    expect(lines[0]).toBe('id,kind,ts,data');
    expect(lines[1]).toMatch(
      /^1,command,\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z,"\{""device"":""valves"",""point"":""relay_1"",""value"":true,""actor"":""lan""\}"$/,
    );
    expect(lines).toHaveLength(3);
    const config = await runCli(['export', '--data-dir', data, '--events', '--kind', 'config', '--format', 'jsonl']);
    expect(
      config.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([{ id: 2, kind: 'config', ts: expect.stringMatching(/Z$/), data: { outcome: 'applied' } }]);
    const wrong = await runCli(['export', '--data-dir', data, '--events', '--device', 'valves']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe(
      'langbiang: --events exports events; --device and --point filter readings (use --kind)\n',
    );
  });

  it('--gateway is for receiver databases, and says so', async () => {
    const r = await runCli(['export', '--data-dir', dir, '--gateway', 'dl-gw-0001']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "langbiang: --gateway filters a receiver database (--receiver-db); a gateway's data directory holds only its own readings\n",
    );
  });
});
