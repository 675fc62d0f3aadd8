import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { LangbiangError } from '../core/errors.js';

/**
 * scrypt password hashes, self-describing (`scrypt$N$r$p$salt$hash`) so the cost can be raised
 * later without breaking stored users. N=2^14, r=8 needs 16 MiB per hash: high enough to make
 * offline guessing slow, low enough for a Pi that must stay under its memory target while it polls.
 */
const N = 1 << 14;
const R = 8;
const P = 2;
const KEY_LEN = 32;
const MAX_MEM = 64 * 1024 * 1024;

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 256;

/**
 * Hashes running at once, and waiting: each takes 16 MiB and a core for ~50 ms on a Pi, so a burst
 * of logins could otherwise take the memory and the CPU the polling needs. Beyond the queue a
 * hash is refused (BUSY): the login answers 503 and the client tries again.
 */
export const MAX_CONCURRENT_HASHES = 2;
export const MAX_QUEUED_HASHES = 8;
let hashing = 0;
const waiting: (() => void)[] = [];

async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (hashing >= MAX_CONCURRENT_HASHES) {
    if (waiting.length >= MAX_QUEUED_HASHES)
      throw new LangbiangError('BUSY', 'too many password checks at once; try again in a moment');
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else hashing++;
  try {
    return await fn();
  } finally {
    // hand the slot to the next in line, or free it
    const next = waiting.shift();
    if (next) next();
    else hashing--;
  }
}

function derive(password: string, salt: Buffer, n: number, r: number, p: number, len: number): Promise<Buffer> {
  return slot(
    () =>
      new Promise((resolve, reject) =>
        scrypt(password.normalize('NFC'), salt, len, { N: n, r, p, maxmem: MAX_MEM }, (err, key) =>
          err ? reject(err) : resolve(key),
        ),
      ),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, N, R, P, KEY_LEN);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (![n, r, p].every((x) => Number.isSafeInteger(x) && x > 0) || n > 1 << 20) return false;
  const salt = Buffer.from(parts[4]!, 'base64');
  const want = Buffer.from(parts[5]!, 'base64');
  if (want.length < 16) return false;
  const got = await derive(password, salt, n, r, p, want.length);
  return timingSafeEqual(got, want);
}

/** A hash nobody can match, verified against for unknown users so both cases take as long. */
let dummy: Promise<string> | null = null;
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(18).toString('base64'));
  return dummy;
}

/** Why a new password is not acceptable, or null. */
export function passwordProblem(password: unknown): string | null {
  if (typeof password !== 'string') return 'the password must be text';
  const len = [...password].length;
  if (len < MIN_PASSWORD_LENGTH) return `the password must have at least ${MIN_PASSWORD_LENGTH} characters`;
  if (len > MAX_PASSWORD_LENGTH) return `the password must have at most ${MAX_PASSWORD_LENGTH} characters`;
  return null;
}
