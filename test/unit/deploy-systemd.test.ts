import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { gatewayConfigSchema } from '../../gateway/config/schema.js';
import { DEFAULT_MAX_ATTEMPTS } from '../../gateway/update/apply.js';
import { parseUnit, systemdAnalyze, verifyUnit } from '../helpers/systemd-unit.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const UNIT = join(ROOT, 'deploy/systemd/langbiang.service');
const SCRIPT = join(ROOT, 'deploy/install-pi.sh');
const UDEV = join(ROOT, 'deploy/udev/99-langbiang-rs485.rules');

// Every key the unit may use; a typo (WatchdogSecs=) is only a warning to systemd, an error here.
const KNOWN: Record<string, string[]> = {
  Unit: ['Description', 'Documentation', 'After', 'Wants', 'Requires', 'StartLimitIntervalSec', 'StartLimitBurst'],
  Service: [
    'Type',
    'NotifyAccess',
    'WatchdogSec',
    'Restart',
    'RestartSec',
    'TimeoutStartSec',
    'TimeoutStopSec',
    'KillMode',
    'User',
    'Group',
    'SupplementaryGroups',
    'Environment',
    'ExecStart',
    'ExecStartPre',
    'ExecStopPost',
    'WorkingDirectory',
    'StateDirectory',
    'StateDirectoryMode',
    'ReadWritePaths',
    'ProtectSystem',
    'ProtectHome',
    'PrivateTmp',
    'NoNewPrivileges',
    'ProtectKernelModules',
    'ProtectKernelLogs',
    'ProtectControlGroups',
    'ProtectClock',
    'ProtectHostname',
    'RestrictSUIDSGID',
    'RestrictRealtime',
    'RestrictNamespaces',
    'LockPersonality',
    'RemoveIPC',
    'CapabilityBoundingSet',
    'AmbientCapabilities',
    'RestrictAddressFamilies',
    'SystemCallArchitectures',
    'SystemCallFilter',
    'SystemCallErrorNumber',
    'UMask',
    'DevicePolicy',
    'DeviceAllow',
    'MemoryMax',
  ],
  Install: ['WantedBy'],
};

function seconds(v: string): number {
  const m = /^(\d+)(ms|s|min|m)?$/.exec(v.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'min' || m[2] === 'm' ? n * 60 : n;
}

/** What the gateway's unit must say; one line per problem. */
function checkUnit(text: string): string[] {
  const { unit, problems } = parseUnit(text);
  for (const [name, keys] of unit) {
    const known = KNOWN[name];
    if (!known) problems.push(`unknown section [${name}]`);
    else for (const k of keys.keys()) if (!known.includes(k)) problems.push(`[${name}] unknown key ${k}`);
  }
  const svc = unit.get('Service') ?? new Map<string, string[]>();
  const one = (k: string) => svc.get(k)?.at(-1);
  const words = (k: string) => (svc.get(k) ?? []).flatMap((v) => v.split(/\s+/)).filter(Boolean);
  const expectValue = (k: string, v: string) => {
    if (one(k) !== v) problems.push(`${k} must be ${v}, is ${one(k) ?? 'unset'}`);
  };
  expectValue('Type', 'notify');
  expectValue('NotifyAccess', 'all');
  expectValue('Restart', 'always');
  expectValue('ProtectSystem', 'strict');
  expectValue('NoNewPrivileges', 'true');
  expectValue('PrivateTmp', 'true');
  expectValue('ProtectHome', 'true');
  const wd = seconds(one('WatchdogSec') ?? '');
  if (!(wd >= 10 && wd <= 300)) problems.push(`WatchdogSec must be 10s–5min, is ${one('WatchdogSec') ?? 'unset'}`);
  const user = one('User');
  if (!user || user === 'root' || user === '0') problems.push('User must be a non-root service user');
  for (const g of ['dialout', 'gpio'])
    if (!words('SupplementaryGroups').includes(g)) problems.push(`SupplementaryGroups lacks ${g}`);
  const dataDir = gatewayConfigSchema.parse({ gateway: { id: 'x' } }).gateway.dataDir;
  if (!words('ReadWritePaths').includes(dataDir)) problems.push(`ReadWritePaths must include the data dir ${dataDir}`);
  if (!/\bstart --config \S+/.test(one('ExecStart') ?? ''))
    problems.push('ExecStart must run `langbiang start --config FILE`');
  // updates (docs/operations.md, "Updating gateways"): the release `current` points at, the
  // pre-start check before every start and after every stop, an install root the service may write
  if (!/^\S+ \/opt\/langbiang\/current\/bin\/langbiang\.js start /.test(one('ExecStart') ?? ''))
    problems.push('ExecStart must run /opt/langbiang/current/bin/langbiang.js');
  const prestart =
    '/opt/langbiang/bin/langbiang-prestart.mjs --install-root /opt/langbiang --data-dir /var/lib/langbiang';
  if (!(svc.get('ExecStartPre') ?? []).some((v) => v.endsWith(prestart)))
    problems.push('ExecStartPre must run the pre-start check');
  if (!(svc.get('ExecStopPost') ?? []).some((v) => v.endsWith(`${prestart} --stopped`)))
    problems.push('ExecStopPost must run the pre-start check with --stopped');
  if (!words('ReadWritePaths').includes('/opt/langbiang')) problems.push('ReadWritePaths must include /opt/langbiang');
  // the 3 starts of a failing release, the switch before and the previous release after must fit
  const burst = Number(unit.get('Unit')?.get('StartLimitBurst')?.at(-1) ?? '5');
  if (!(burst >= DEFAULT_MAX_ATTEMPTS + 2))
    problems.push(`StartLimitBurst must leave room for a rollback (≥ ${DEFAULT_MAX_ATTEMPTS + 2}), is ${burst}`);
  if (!unit.get('Install')?.get('WantedBy'))
    problems.push('[Install] WantedBy missing (the unit could not be enabled)');
  return problems;
}

const unitText = readFileSync(UNIT, 'utf8');

describe('deploy/systemd/langbiang.service (static check, always)', () => {
  it('has readiness, watchdog, restart and hardening as required', () => {
    expect(checkUnit(unitText)).toEqual([]);
  });

  it('the checker catches a broken unit', () => {
    const bad = unitText
      .replace('Type=notify', 'Type=simple')
      .replace('WatchdogSec=30s', 'WatchdogSecs=30s')
      .replace(/^ProtectSystem=strict$/m, 'ProtectSystem=full')
      .replace(/^ReadWritePaths=\/var\/lib\/langbiang \/opt\/langbiang$/m, '')
      .replace('SupplementaryGroups=dialout gpio', 'SupplementaryGroups=dialout')
      .replace('User=langbiang', 'User=root');
    expect(checkUnit(bad)).toEqual([
      '[Service] unknown key WatchdogSecs',
      'Type must be notify, is simple',
      'ProtectSystem must be strict, is full',
      'WatchdogSec must be 10s–5min, is unset',
      'User must be a non-root service user',
      'SupplementaryGroups lacks gpio',
      'ReadWritePaths must include the data dir /var/lib/langbiang',
      'ReadWritePaths must include /opt/langbiang',
    ]);
    expect(checkUnit(unitText.replace('NoNewPrivileges=true', 'NoNewPrivileges=false'))).toEqual([
      'NoNewPrivileges must be true, is false',
    ]);
    expect(
      checkUnit(
        unitText
          .replace(/^ExecStopPost=.*$/m, '')
          .replace('StartLimitBurst=10', 'StartLimitBurst=3')
          .replace('/opt/langbiang/current/bin/langbiang.js start', '/opt/langbiang/app/bin/langbiang.js start'),
      ),
    ).toEqual([
      'ExecStart must run /opt/langbiang/current/bin/langbiang.js',
      'ExecStopPost must run the pre-start check with --stopped',
      'StartLimitBurst must leave room for a rollback (≥ 5), is 3',
    ]);
    expect(checkUnit(`${unitText}\nthis is not a key\n`).join('\n')).toMatch(
      /^line \d+: not a key=value in a section: this is not a key$/,
    );
  });

  it('provisioning runs as root before start (the boot partition is root-only FAT), the gateway does not', () => {
    const pre = /^ExecStartPre=\+(.*)$/m.exec(unitText)?.[1] ?? '';
    expect(pre).toMatch(
      / provision --import-boot --config \/etc\/langbiang\/config\.yaml --owner langbiang; fi; done'$/,
    );
    // root runs the (service-writable) release only when a bundle is on the boot partition
    // systemd turns $$ into $ (a lone $d would be systemd's own, empty, variable)
    const guard = (/^\/bin\/sh -c '(.*)'$/.exec(pre)?.[1] ?? '').replaceAll('$$', '$');
    expect(pre).not.toMatch(/[^$]\$d\b/);
    const sh = (bootDirs: string) =>
      spawnSync(
        'sh',
        [
          '-c',
          guard
            .replaceAll('/boot/firmware/langbiang /boot/langbiang', bootDirs)
            .replace('exec /usr/bin/node', 'exec echo'),
        ],
        {
          encoding: 'utf8',
        },
      );
    expect(sh('/nonexistent/a /nonexistent/b')).toMatchObject({ status: 0, stdout: '' });
    expect(sh(`/nonexistent/a ${ROOT}`).stdout).toMatch(/provision --import-boot/);
    expect(unitText).toMatch(/^ExecStart=\/usr\/bin\/node \S+\/bin\/langbiang\.js start/m);
    // the pre-start check runs in the sandbox as the service user (no '+'), after provisioning
    const pres = [...unitText.matchAll(/^ExecStartPre=(.*)$/gm)].map((m) => m[1]!);
    expect(pres[1]).toMatch(/^\/usr\/bin\/node \/opt\/langbiang\/bin\/langbiang-prestart\.mjs /);
  });
});

describe('systemd-analyze verify (where the machine has it)', () => {
  const analyze = systemdAnalyze();
  it('accepts the unit with no warnings, and flags a broken one', () => {
    // Where it is missing (a container without systemd) the static check stands alone.
    if (!analyze) {
      expect(checkUnit(unitText)).toEqual([]);
      return;
    }
    const good = verifyUnit(analyze, 'langbiang.service', unitText);
    expect(good.lines).toEqual([]);
    expect(good.status).toBe(0);
    const bad = verifyUnit(
      analyze,
      'broken.service',
      unitText.replace('WatchdogSec=30s', 'WatchdogSecs=30s').replace('Type=notify', 'Type=bogus'),
    );
    expect(bad.out).toContain("Unknown key 'WatchdogSecs'");
    expect(bad.out).toMatch(/Failed to parse service type.*bogus/);
  });
});

describe('deploy/install-pi.sh', () => {
  const text = readFileSync(SCRIPT, 'utf8');

  it('parses with bash -n, and with shellcheck where installed', () => {
    const r = spawnSync('bash', ['-n', SCRIPT], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    if (spawnSync('sh', ['-c', 'command -v shellcheck']).status === 0) {
      const sc = spawnSync('shellcheck', ['-S', 'warning', SCRIPT], { encoding: 'utf8' });
      expect(sc.stdout).toBe('');
    }
  });

  it('stops on the first failure and installs what the unit needs', () => {
    expect(text).toMatch(/^set -euo pipefail$/m);
    expect(text).toContain('useradd --system');
    expect(text).toMatch(/usermod -a -G dialout,gpio/);
    expect(text).toContain('deploy/udev/99-langbiang-rs485.rules');
    expect(text).toContain('deploy/systemd/langbiang.service');
    expect(text).toContain('deploy/config.example.yaml');
    expect(text).toContain('systemctl enable');
    // the files it installs exist
    for (const f of ['deploy/udev/99-langbiang-rs485.rules', 'deploy/config.example.yaml']) {
      expect(existsSync(join(ROOT, f)), f).toBe(true);
    }
    // the user it creates is the unit's
    expect(text).toContain('SVC_USER=langbiang');
    expect(unitText).toContain('User=langbiang');
  });

  it('refuses to run as a normal user with one clear line', () => {
    if (process.getuid?.() === 0) {
      // as root it would install; check the guard is the first thing it does
      expect(text.indexOf('[ "$(id -u)" -eq 0 ] || die')).toBeLessThan(text.indexOf('apt-get update'));
      return;
    }
    const r = spawnSync('bash', [SCRIPT], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/run as root/);
  });

  it('rejects an unknown option before touching anything', () => {
    const r = spawnSync('bash', [SCRIPT, '--frobnicate'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown option --frobnicate');
  });
});

describe('deploy/udev/99-langbiang-rs485.rules', () => {
  const rules = readFileSync(UDEV, 'utf8');
  it('names FTDI, CH340, CP210x and PL2303 adapters /dev/rs485-…, group dialout', () => {
    for (const [vid, pid] of [
      ['0403', '6001'],
      ['1a86', '7523'],
      ['10c4', 'ea60'],
      ['067b', '2303'],
    ]) {
      expect(rules).toMatch(new RegExp(`ATTRS\\{idVendor\\}=="${vid}", ATTRS\\{idProduct\\}=="[^"]*${pid}`));
    }
    expect(rules).toMatch(/SYMLINK\+="rs485-/);
    expect(rules).toContain('GROUP="dialout"');
  });
  it('every rule line is made of KEY op "value" pairs with balanced quotes', () => {
    const bad = rules
      .split('\n')
      .filter((l) => l.trim() && !l.trim().startsWith('#'))
      .filter(
        (l) =>
          (l.match(/"/g)?.length ?? 0) % 2 !== 0 ||
          !/^([A-Z_]+(\{[^}]+\})?(==|!=|=|\+=|:=)"[^"]*"(, )?)+$/.test(l.trim()),
      );
    expect(bad).toEqual([]);
  });
});
