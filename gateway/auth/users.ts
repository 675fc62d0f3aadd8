import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LangbiangError } from '../core/errors.js';
import { dummyHash, hashPassword, passwordProblem, verifyPassword } from './password.js';

export type Role = 'farmer' | 'technician';
export const ROLES: readonly Role[] = ['farmer', 'technician'];

/** File of local users and API tokens in the data directory (mode 0600). */
export const USERS_FILE = 'users.json';

export interface UserRecord {
  name: string;
  role: Role;
  hash: string;
  createdAt: string;
}

export interface TokenRecord {
  id: string;
  label: string;
  /** sha256 of the secret: tokens are long random strings, so a fast hash is enough */
  hash: string;
  createdAt: string;
  createdBy: string;
}

interface UsersFile {
  version: 1;
  users: UserRecord[];
  tokens: TokenRecord[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;
const TOKEN = /^lbt_([a-f0-9]{12})_([A-Za-z0-9_-]{32,64})$/;

export function userNameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || !NAME.test(name))
    return 'a user name is 1–32 letters, digits, ".", "-" or "_", starting with a letter or digit';
  return null;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Local users (scrypt hashes) and API tokens, in one small JSON file beside the store. The file is
 * re-read when it changes on disk, so `langbiang user add` works while the gateway runs.
 */
export class UserStore {
  private data: UsersFile = { version: 1, users: [], tokens: [] };
  private mtimeMs = -1;

  constructor(readonly file: string) {
    this.reload();
  }

  static inDataDir(dataDir: string): UserStore {
    return new UserStore(join(dataDir, USERS_FILE));
  }

  private reload(): void {
    let m: number;
    try {
      m = statSync(this.file).mtimeMs;
    } catch {
      this.data = { version: 1, users: [], tokens: [] };
      this.mtimeMs = -1;
      return;
    }
    if (m === this.mtimeMs) return;
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as Partial<UsersFile>;
      this.data = {
        version: 1,
        users: Array.isArray(parsed.users)
          ? parsed.users.filter((u) => u && NAME.test(u.name) && ROLES.includes(u.role))
          : [],
        tokens: Array.isArray(parsed.tokens) ? parsed.tokens : [],
      };
      this.mtimeMs = m;
    } catch (err) {
      throw new LangbiangError('STORE_FAILED', `${this.file} is not a valid users file (${(err as Error).message})`);
    }
  }

  private save(): void {
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(this.data, null, 2)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.file);
    this.mtimeMs = statSync(this.file).mtimeMs;
  }

  hasUsers(): boolean {
    this.reload();
    return this.data.users.length > 0;
  }

  list(): { name: string; role: Role; createdAt: string }[] {
    this.reload();
    return this.data.users.map(({ name, role, createdAt }) => ({ name, role, createdAt }));
  }

  get(name: string): { name: string; role: Role } | undefined {
    this.reload();
    const u = this.data.users.find((x) => x.name === name);
    return u ? { name: u.name, role: u.role } : undefined;
  }

  /** Adds a user, or with replace sets the password and role of an existing one. */
  async add(name: string, role: Role, password: string, opts: { replace?: boolean } = {}): Promise<void> {
    const bad =
      userNameProblem(name) ??
      (ROLES.includes(role) ? null : `role must be farmer or technician`) ??
      passwordProblem(password);
    if (bad) throw new LangbiangError('USAGE', bad);
    const hash = await hashPassword(password);
    this.reload();
    const existing = this.data.users.find((u) => u.name === name);
    if (existing && !opts.replace) throw new LangbiangError('USAGE', `user "${name}" already exists`);
    if (existing) {
      existing.hash = hash;
      existing.role = role;
    } else {
      this.data.users.push({ name, role, hash, createdAt: new Date().toISOString() });
    }
    this.save();
  }

  remove(name: string): boolean {
    this.reload();
    const before = this.data.users.length;
    this.data.users = this.data.users.filter((u) => u.name !== name);
    if (this.data.users.length === before) return false;
    this.save();
    return true;
  }

  /** The user when name and password match; always costs one scrypt, known user or not. */
  async verify(name: unknown, password: unknown): Promise<{ name: string; role: Role } | null> {
    if (typeof name !== 'string' || typeof password !== 'string' || password.length > 1024) return null;
    this.reload();
    const u = this.data.users.find((x) => x.name === name);
    const ok = await verifyPassword(password, u?.hash ?? (await dummyHash()));
    return ok && u ? { name: u.name, role: u.role } : null;
  }

  /** Creates an API token; the secret is returned once and only its hash is kept. */
  createToken(label: string, createdBy: string): { id: string; token: string } {
    this.reload();
    const id = randomBytes(6).toString('hex');
    const token = `lbt_${id}_${randomBytes(32).toString('base64url')}`;
    this.data.tokens.push({
      id,
      label: label.slice(0, 64),
      hash: sha256(token).toString('hex'),
      createdAt: new Date().toISOString(),
      createdBy,
    });
    this.save();
    return { id, token };
  }

  listTokens(): Omit<TokenRecord, 'hash'>[] {
    this.reload();
    return this.data.tokens.map(({ id, label, createdAt, createdBy }) => ({ id, label, createdAt, createdBy }));
  }

  revokeToken(id: string): boolean {
    this.reload();
    const before = this.data.tokens.length;
    this.data.tokens = this.data.tokens.filter((t) => t.id !== id);
    if (before === this.data.tokens.length) return false;
    this.save();
    return true;
  }

  verifyToken(token: string): TokenRecord | null {
    const m = TOKEN.exec(token);
    if (!m) return null;
    this.reload();
    const rec = this.data.tokens.find((t) => t.id === m[1]);
    if (!rec) return null;
    const want = Buffer.from(rec.hash, 'hex');
    const got = sha256(token);
    return want.length === got.length && timingSafeEqual(want, got) ? rec : null;
  }

  exists(): boolean {
    return existsSync(this.file);
  }
}
