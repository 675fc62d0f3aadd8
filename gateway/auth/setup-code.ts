import { createHash, randomInt, timingSafeEqual } from 'node:crypto';

// No 0/O, 1/I/L: the code is read off a log on a small screen and typed on a phone.
const ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const LENGTH = 12;
export const SETUP_CODE_TTL_MS = 60 * 60_000;

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
