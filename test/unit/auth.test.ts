import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AuthContext, LoginLimiter, SessionStore, SetupCode, UserStore } from '../../gateway/auth/index.js';

describe('local users', () => {
  it('stores scrypt hashes in a 0600 file and verifies passwords', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'langbiang-users-'));
    const users = UserStore.inDataDir(dir);
    expect(users.hasUsers()).toBe(false);
    await users.add('mai', 'farmer', 'dâu tây Đà Lạt');
    const text = readFileSync(users.file, 'utf8');
    expect(text).toMatch(/"hash": "scrypt\$16384\$8\$2\$/);
    expect(text).not.toContain('dâu tây');
    expect(statSync(users.file).mode & 0o777).toBe(0o600);
    expect(await users.verify('mai', 'dâu tây Đà Lạt')).toEqual({ name: 'mai', role: 'farmer' });
    // NFC and NFD spellings of the same Vietnamese password are the same password
    expect(await users.verify('mai', 'dâu tây Đà Lạt'.normalize('NFD'))).not.toBeNull();
    expect(await users.verify('mai', 'dau tay Da Lat')).toBeNull();
    expect(await users.verify('nobody', 'dâu tây Đà Lạt')).toBeNull();
    await expect(users.add('mai', 'farmer', 'another-one')).rejects.toThrow(/already exists/);
    await expect(users.add('x y', 'farmer', 'long-enough')).rejects.toThrow(/user name/);
    await expect(users.add('short', 'farmer', 'abc')).rejects.toThrow(/at least 8/);
    // a second process (the CLI) adding a user is seen without a restart
    await UserStore.inDataDir(dir).add('lan', 'technician', 'ky-thuat-vien');
    expect(users.get('lan')?.role).toBe('technician');
  });

  it('keeps only a hash of API tokens and recognises the exact token', () => {
    const users = UserStore.inDataDir(mkdtempSync(join(tmpdir(), 'langbiang-tokens-')));
    const { id, token } = users.createToken('prometheus', 'lan');
    expect(readFileSync(users.file, 'utf8')).not.toContain(token.split('_')[2]);
    expect(users.verifyToken(token)?.id).toBe(id);
    expect(users.verifyToken(`${token}x`)).toBeNull();
    expect(users.verifyToken(token.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')))).toBeNull();
    expect(users.revokeToken(id)).toBe(true);
    expect(users.verifyToken(token)).toBeNull();
  });
});

describe('login limiter', () => {
  it('locks a (user, address) pair after 5 failures with a doubling backoff, and forgets after success', () => {
    let now = 1_000_000;
    const l = new LoginLimiter({ now: () => now });
    for (let i = 0; i < 4; i++) l.failed('10.0.0.2', 'mai');
    expect(l.retryAfter('10.0.0.2', 'mai')).toBe(0);
    l.failed('10.0.0.2', 'mai');
    expect(l.retryAfter('10.0.0.2', 'mai')).toBe(30);
    expect(l.retryAfter('10.0.0.2', 'MAI')).toBe(30);
    // someone else mistyping mai's name on their own phone does not lock mai out of hers
    expect(l.retryAfter('10.0.0.9', 'mai')).toBe(0);
    expect(l.retryAfter('10.0.0.2', 'lan')).toBe(0); // other users on the same phone are not locked
    now += 31_000;
    l.failed('10.0.0.2', 'mai');
    expect(l.retryAfter('10.0.0.2', 'mai')).toBe(60);
    now += 61_000;
    l.succeeded('10.0.0.2', 'mai');
    expect(l.retryAfter('10.0.0.2', 'mai')).toBe(0);
  });

  it('counts an attempt when it starts: a burst of parallel attempts gets no more tries than a sequence', () => {
    const l = new LoginLimiter();
    const waits = Array.from({ length: 12 }, () => l.attempt('10.0.0.3', 'tech'));
    expect(waits.filter((w) => w === 0)).toHaveLength(5);
    expect(waits.slice(5).every((w) => w > 0)).toBe(true);
    // a good password on one of the first five clears the pair
    const m = new LoginLimiter();
    for (let i = 0; i < 3; i++) m.attempt('10.0.0.4', 'tech');
    m.succeeded('10.0.0.4', 'tech');
    expect(m.attempt('10.0.0.4', 'tech')).toBe(0);
  });

  it('locks an address that tries many user names', () => {
    const l = new LoginLimiter({ ipFailures: 20 });
    for (let i = 0; i < 20; i++) l.failed('10.0.0.66', `user${i}`);
    expect(l.retryAfter('10.0.0.66', 'someone-new')).toBeGreaterThan(0);
    expect(l.retryAfter('10.0.0.2', 'someone-new')).toBe(0);
  });
});

describe('setup code and sessions', () => {
  it('a setup code works once, ignores case and dashes, and expires', () => {
    let now = 0;
    const s = new SetupCode(() => now);
    const { code } = s.issue();
    expect(code).toMatch(/^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$/);
    expect(s.consume('WRONG-CODE-HERE')).toBe(false);
    expect(s.consume(code.toLowerCase().replace(/-/g, ' '))).toBe(true);
    expect(s.consume(code)).toBe(false);
    const second = s.issue().code;
    now += 61 * 60_000;
    expect(s.active()).toBe(false);
    expect(s.consume(second)).toBe(false);
  });

  it('accepts the provisioned code from the data dir once, with no expiry, and never logs its value', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'langbiang-provisioned-'));
    mkdirSync(join(dir, 'secrets'), { mode: 0o700 });
    const file = join(dir, 'secrets', 'setup-code');
    const provisioned = new SetupCode().issue().code; // what `langbiang provision` writes
    writeFileSync(file, `${provisioned}\n`, { mode: 0o600 });
    let logText = '';
    const log = pino(
      { level: 'debug' },
      new Writable({
        write(chunk, _e, cb) {
          logText += chunk.toString();
          cb();
        },
      }),
    );
    const auth = new AuthContext(dir, log);
    auth.ensureSetupCode('http://127.0.0.1:8080');
    auth.ensureSetupCode('http://127.0.0.1:8080'); // said once
    expect(logText.match(/a provisioned setup code is present/g)).toHaveLength(1);
    expect(logText).toContain(file);
    expect(logText).toMatch(/FIRST-RUN SETUP CODE: /); // the logged code still works beside it
    // a wrong code and a near miss do not use it up, and the file stays
    expect(auth.consumeSetupCode('AAAA-BBBB-CCCC')).toBe(false);
    expect(auth.consumeSetupCode(provisioned.slice(0, -1))).toBe(false);
    expect(auth.consumeSetupCode(`${provisioned}X`)).toBe(false);
    expect(auth.consumeSetupCode(42)).toBe(false);
    expect(existsSync(file)).toBe(true);
    // no expiry: long after the logged code would have expired, typed in lower case without dashes
    const later = new AuthContext(dir, log);
    (later.setup as unknown as { now: () => number }).now = () => Date.now() + 30 * 86_400_000;
    expect(later.consumeSetupCode(provisioned.toLowerCase().replace(/-/g, ''))).toBe(true);
    expect(existsSync(file)).toBe(false); // used: deleted
    expect(later.consumeSetupCode(provisioned)).toBe(false);
    expect(logText).toMatch(/the provisioned setup code was used; its file is deleted/);
    expect(logText).not.toContain(provisioned);
    expect(logText).not.toContain(provisioned.replace(/-/g, ''));
  });

  it('drops the provisioned code once a user exists, and ignores a malformed one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'langbiang-provisioned-'));
    mkdirSync(join(dir, 'secrets'));
    const file = join(dir, 'secrets', 'setup-code');
    const log = pino({ level: 'silent' });
    writeFileSync(file, 'short\n');
    const auth = new AuthContext(dir, log);
    expect(auth.provisioned.state()).toBe('malformed');
    expect(auth.consumeSetupCode('short')).toBe(false);
    writeFileSync(file, 'ABCD-EFGH-JKMN\n');
    // the first technician came with `langbiang user add`: the provisioned code is of no use any more
    await auth.users.add('lan', 'technician', 'ky-thuat-vien');
    auth.ensureSetupCode();
    expect(existsSync(file)).toBe(false);
    expect(auth.setup.active()).toBe(false);
  });

  it('sessions expire when idle and end with their user', () => {
    let now = 0;
    const store = new SessionStore(() => now);
    const a = store.create('mai', 'farmer');
    const b = store.create('mai', 'farmer');
    expect(a.id).not.toBe(b.id);
    expect(a.csrf.length).toBeGreaterThan(20);
    now += 11 * 3_600_000;
    expect(store.get(a.id)?.user).toBe('mai');
    now += 13 * 3_600_000;
    expect(store.get(a.id)).toBeUndefined();
    const c = store.create('lan', 'technician');
    store.destroyUser('lan');
    expect(store.get(c.id)).toBeUndefined();
  });
});
