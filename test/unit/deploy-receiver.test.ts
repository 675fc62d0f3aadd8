import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseUnit, systemdAnalyze, verifyUnit } from '../helpers/systemd-unit.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const unitText = readFileSync(join(ROOT, 'deploy/systemd/langbiang-receiver.service'), 'utf8');
const envText = readFileSync(join(ROOT, 'deploy/receiver.env.example'), 'utf8');

const KNOWN: Record<string, string[]> = {
  Unit: ['Description', 'Documentation', 'After', 'Wants', 'StartLimitIntervalSec', 'StartLimitBurst'],
  Service: [
    'Type',
    'Restart',
    'RestartSec',
    'TimeoutStopSec',
    'KillSignal',
    'User',
    'Group',
    'Environment',
    'EnvironmentFile',
    'ExecStart',
    'WorkingDirectory',
    'StateDirectory',
    'StateDirectoryMode',
    'ReadWritePaths',
    'ProtectSystem',
    'ProtectHome',
    'PrivateTmp',
    'PrivateDevices',
    'NoNewPrivileges',
    'ProtectKernelModules',
    'ProtectKernelLogs',
    'ProtectKernelTunables',
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
    'MemoryMax',
  ],
  Install: ['WantedBy'],
};

/** What the receiver's unit must say; one line per problem. */
function checkReceiverUnit(text: string): string[] {
  const { unit, problems } = parseUnit(text);
  for (const [name, keys] of unit) {
    const known = KNOWN[name];
    if (!known) problems.push(`unknown section [${name}]`);
    else for (const k of keys.keys()) if (!known.includes(k)) problems.push(`[${name}] unknown key ${k}`);
  }
  const svc = unit.get('Service') ?? new Map<string, string[]>();
  const one = (k: string) => svc.get(k)?.at(-1);
  for (const [k, v] of [
    ['Restart', 'on-failure'],
    ['ProtectSystem', 'strict'],
    ['NoNewPrivileges', 'true'],
    ['PrivateTmp', 'true'],
    ['PrivateDevices', 'true'],
    ['ProtectHome', 'true'],
  ] as const)
    if (one(k) !== v) problems.push(`${k} must be ${v}, is ${one(k) ?? 'unset'}`);
  const user = one('User');
  if (!user || user === 'root' || user === '0') problems.push('User must be a non-root service user');
  const state = one('StateDirectory');
  if (!state || !(one('ReadWritePaths') ?? '').split(/\s+/).includes(`/var/lib/${state}`))
    problems.push('ReadWritePaths must include the state directory');
  const exec = one('ExecStart') ?? '';
  if (!/ receiver --broker \$\{RECEIVER_BROKER\} --db \$\{RECEIVER_DB\}/.test(exec))
    problems.push('ExecStart must run `langbiang receiver` with the broker and database of the environment file');
  if (!/--health-port \d+/.test(exec)) problems.push('ExecStart must serve --health-port');
  if (/PGPASSWORD|password=|:[^/@\s]+@/.test(exec))
    problems.push('ExecStart must not carry a password (argv is public)');
  if (!one('EnvironmentFile')) problems.push('EnvironmentFile missing (where the broker and database are set)');
  if (!unit.get('Install')?.get('WantedBy')) problems.push('[Install] WantedBy missing');
  return problems;
}

describe('deploy/systemd/langbiang-receiver.service (static check, always)', () => {
  it('runs the receiver as a sandboxed non-root service from its environment file', () => {
    expect(checkReceiverUnit(unitText)).toEqual([]);
  });

  it('the checker catches a broken unit', () => {
    const bad = unitText
      .replace('Restart=on-failure', 'Restartt=on-failure')
      .replace('User=langbiang-receiver', 'User=root')
      .replace(/--db \$\{RECEIVER_DB\}/, '--db postgres://city:secret@db/telemetry')
      .replace(/^PrivateDevices=true$/m, '');
    expect(checkReceiverUnit(bad)).toEqual([
      '[Service] unknown key Restartt',
      'Restart must be on-failure, is unset',
      'PrivateDevices must be true, is unset',
      'User must be a non-root service user',
      'ExecStart must run `langbiang receiver` with the broker and database of the environment file',
      'ExecStart must not carry a password (argv is public)',
    ]);
  });

  it('the example environment file sets every variable the unit uses', () => {
    const set = new Set([...envText.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]));
    for (const m of unitText.matchAll(/\$\{?([A-Z_]+)\}?/g)) expect(set, m[1]).toContain(m[1]);
    expect(set).toContain('PGPASSWORD');
  });
});

describe('systemd-analyze verify on the receiver unit (where the machine has it)', () => {
  const analyze = systemdAnalyze();
  it('accepts it with no warnings, and flags a broken one', () => {
    if (!analyze) {
      expect(checkReceiverUnit(unitText)).toEqual([]);
      return;
    }
    const good = verifyUnit(analyze, 'langbiang-receiver.service', unitText);
    expect(good.lines).toEqual([]);
    expect(good.status).toBe(0);
    const bad = verifyUnit(analyze, 'broken.service', unitText.replace('Type=exec', 'Type=bogus'));
    expect(bad.out).toMatch(/Failed to parse service type.*bogus/);
  });
});
