import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserStore } from '../../gateway/auth/index.js';
import { runCli } from '../helpers/cli.js';

describe('langbiang user add', () => {
  it('reads the password from stdin, finds the data dir from --config or --data-dir, and refuses bad input', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'langbiang-user-'));
    const data = join(dir, 'data');
    const add = await runCli(['user', 'add', 'mai', '--role', 'farmer', '--data-dir', data], {
      input: 'ruộng dâu 2026\n',
    });
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/user mai \(farmer\) saved/);
    expect(readFileSync(join(data, 'users.json'), 'utf8')).not.toContain('ruộng');
    expect(await UserStore.inDataDir(data).verify('mai', 'ruộng dâu 2026')).toEqual({ name: 'mai', role: 'farmer' });

    const config = join(dir, 'gateway.yaml');
    writeFileSync(config, `gateway: { id: dl-user-test, dataDir: ${data} }\n`);
    const tech = await runCli(['user', 'add', 'lan', '--role', 'technician', '--config', config], {
      input: 'ky-thuat-vien\n',
    });
    expect(tech.code, tech.stderr).toBe(0);

    const dup = await runCli(['user', 'add', 'mai', '--role', 'farmer', '--data-dir', data], {
      input: 'another-pass\n',
    });
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/already exists/);
    const short = await runCli(['user', 'add', 'hoa', '--role', 'farmer', '--data-dir', data], { input: 'abc\n' });
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/at least 8 characters/);
    expect(short.stderr).not.toMatch(/at .*\.js:\d+/);
    const role = await runCli(['user', 'add', 'hoa', '--role', 'boss', '--data-dir', data], { input: 'long-enough\n' });
    expect(role.code).toBe(2);
    const nowhere = await runCli(['user', 'add', 'hoa', '--role', 'farmer'], { input: 'long-enough\n' });
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toMatch(/--config FILE or --data-dir DIR/);

    const list = await runCli(['user', 'list', '--data-dir', data]);
    expect(list.stdout).toMatch(/mai\s+farmer/);
    expect(list.stdout).toMatch(/lan\s+technician/);
  });
});
