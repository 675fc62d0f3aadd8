import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

// No 0/O, 1/I/L: the code is read off a log on a small screen and typed on a phone.
const ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const LENGTH = 12;
export const SETUP_CODE_TTL_MS = 60 * 60_000;
/** The code a provisioning bundle brings, in `<dataDir>/secrets/` (gateway/provision writes it). */
export const SETUP_CODE_FILE = 'setup-code';
// at least as strong as an issued code; longer ones (typed by hand into the bundle) are fine
const PROVISIONED_FORMAT = /^[A-Z0-9]{12,64}$/;

function digest(code: string): Buffer {
  return createHash('sha256').update(code).digest();
}

export function normaliseCode(input: string): string {
  return input.toUpperCase().replace(/[\s-]/g, '');
}

/**
 * The one-time code that lets the first technician set a password (there is no default password).
 * Single use, expires, compared in constant time; only its digest is kept.
 */
export class SetupCode {
  private hash: Buffer | null = null;
  private expiresAt = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** A fresh code (the previous one stops working), formatted XXXX-XXXX-XXXX. */
  issue(): { code: string; expiresAt: number } {
    let raw = '';
    for (let i = 0; i < LENGTH; i++) raw += ALPHABET[randomInt(ALPHABET.length)];
    this.hash = digest(raw);
    this.expiresAt = this.now() + SETUP_CODE_TTL_MS;
    return { code: raw.match(/.{4}/g)!.join('-'), expiresAt: this.expiresAt };
  }

  /** A code is outstanding and not expired. */
  active(): boolean {
    return this.hash !== null && this.now() < this.expiresAt;
  }

  /** Checks and, on a match, uses up the code. */
  consume(input: unknown): boolean {
    if (typeof input !== 'string' || !this.hash) return false;
    const ok = timingSafeEqual(digest(normaliseCode(input)), this.hash) && this.now() < this.expiresAt;
    if (ok) this.hash = null;
    return ok;
  }

  revoke(): void {
    this.hash = null;
  }
}

/**
 * The setup code a provisioning bundle put in `<dataDir>/secrets/setup-code` (0600): the technician
 * got it printed when the bundle was made, so it works with no access to the log. It does not
 * expire (the gateway may sit in a box for weeks), works once — the file is deleted when used — and
 * is compared in constant time. Read from disk at each try; never logged.
 */
export class ProvisionedSetupCode {
  readonly file: string;

  constructor(dataDir: string) {
    this.file = join(dataDir, 'secrets', SETUP_CODE_FILE);
  }

  /** 'present', 'absent', or 'malformed' (a file that holds no usable code: it is never accepted). */
  state(): 'present' | 'absent' | 'malformed' {
    const d = this.digest();
    return d === 'absent' ? 'absent' : d === 'malformed' ? 'malformed' : 'present';
  }

  /** Checks; on a match the file is deleted (a failed delete is returned, the code still matched). */
  consume(input: unknown): { ok: boolean; removeError?: string } {
    if (typeof input !== 'string') return { ok: false };
    const want = this.digest();
    if (want === 'absent' || want === 'malformed') return { ok: false };
    if (!timingSafeEqual(digest(normaliseCode(input)), want)) return { ok: false };
    return { ok: true, removeError: this.remove() };
  }

  /** Deletes the file; answers why it could not be, if so. */
  remove(): string | undefined {
    try {
      rmSync(this.file, { force: true });
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  private digest(): Buffer | 'absent' | 'malformed' {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : 'malformed';
    }
    const raw = normaliseCode(text);
    return PROVISIONED_FORMAT.test(raw) ? digest(raw) : 'malformed';
  }
}
