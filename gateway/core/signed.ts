import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

/**
 * The signed envelope of everything the city sends that changes a gateway (a config, a command,
 * later an update order): the broker is a transport, not a trust boundary, so what counts is a
 * signature by a key pinned on the gateway at provisioning (docs/protocol.md, "Signed messages").
 *
 *   { "v": 1, "key": "city-ops", "body": "<base64 of the signed bytes>", "sig": "<base64 Ed25519>" }
 *
 * The signature covers the exact bytes of `body` (nothing is re-serialised before verifying), and
 * those bytes are a JSON object binding the message to one gateway and a time window:
 *
 *   { "kind": "command", "gateway": "dl-gw-0001", "issuedAt": 1764…, "expiresAt": 1764…,
 *     "message": { …the kind's own message… } }
 *
 * Replay inside the window is the caller's to refuse, by the kind's own counter (a config's
 * version, a command's id). Verification never throws: every refusal has a reason code.
 */
export const SIGNED_VERSION = 1;
/**
 * `ack` is the other direction's trust: a city receiver's end-to-end acknowledgement, signed by a
 * receiver key pinned on the gateway (its `message` is the ack itself, see cloud-sync/protocol/ack.ts).
 */
export const SIGNED_KINDS = ['config', 'command', 'update', 'ack'] as const;
export type SignedKind = (typeof SIGNED_KINDS)[number];

export type SignedRefusal =
  | 'no_pinned_key'
  | 'unsigned'
  | 'malformed'
  | 'unknown_key'
  | 'bad_signature'
  | 'wrong_kind'
  | 'wrong_gateway'
  | 'not_yet_valid'
  | 'expired'
  | 'too_long_lived'
  | 'replayed';

/** Key names are file names and audit actors: short, plain. */
export const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** how far a message's issue time may be ahead of the gateway's clock */
export const DEFAULT_SKEW_MS = 5 * 60_000;

export interface SignedEnvelope {
  v: number;
  key: string;
  body: string;
  sig: string;
}

export interface SignedBody {
  kind: SignedKind;
  gateway: string;
  issuedAt: number;
  expiresAt: number;
  message: unknown;
}

export type Verified =
  | { ok: true; key: string; body: SignedBody; bodyBytes: Buffer }
  | { ok: false; reason: SignedRefusal; message: string };

export interface VerifyOptions {
  kind: SignedKind;
  gateway: string;
  /** the pinned public keys by name; empty: everything is refused */
  keys: ReadonlyMap<string, KeyObject>;
  now: number;
  /** longest window (expiresAt − issuedAt) accepted for this kind */
  maxLifetimeMs: number;
  /** largest envelope read at all */
  maxBytes: number;
  skewMs?: number;
  /**
   * Skip the time window (issue and expiry against `now`): for a kind whose replay changes
   * nothing (an ack only ever raises a watermark), so a gateway whose clock is not yet set
   * (no RTC before NTP) still takes it. The window's own shape is still checked.
   */
  ignoreTime?: boolean;
}

const ENVELOPE_KEYS = new Set(['v', 'key', 'body', 'sig']);
const BODY_KEYS = new Set(['kind', 'gateway', 'issuedAt', 'expiresAt', 'message']);
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function refuse(reason: SignedRefusal, message: string): Verified {
  return { ok: false, reason, message };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** Decodes and checks one signed message; `payload` is the MQTT payload as received. */
export function verifySigned(payload: Buffer | Uint8Array | string, o: VerifyOptions): Verified {
  if (o.keys.size === 0)
    return refuse('no_pinned_key', `no city key is pinned on this gateway; ${o.kind} messages over MQTT are refused`);
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > o.maxBytes)
    return refuse('malformed', `${o.kind} message too large (${size} bytes, at most ${o.maxBytes})`);
  let doc: unknown;
  try {
    doc = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8'));
  } catch {
    return refuse('unsigned', `${o.kind} message is not a signed envelope (not JSON)`);
  }
  if (!isObject(doc) || typeof doc.sig !== 'string' || typeof doc.body !== 'string' || typeof doc.key !== 'string')
    return refuse('unsigned', `${o.kind} message is not signed (needs key, body and sig)`);
  for (const k of Object.keys(doc))
    if (!ENVELOPE_KEYS.has(k)) return refuse('malformed', `signed envelope: unknown key "${k.slice(0, 40)}"`);
  if (doc.v !== SIGNED_VERSION) return refuse('malformed', `signed envelope: v must be ${SIGNED_VERSION}`);
  if (!KEY_NAME.test(doc.key)) return refuse('malformed', 'signed envelope: key is not a key name');
  const key = o.keys.get(doc.key);
  if (!key) return refuse('unknown_key', `signed by "${doc.key}", which is not a key pinned on this gateway`);
  if (!BASE64.test(doc.body) || !BASE64.test(doc.sig))
    return refuse('malformed', 'signed envelope: body and sig must be base64');
  const bodyBytes = Buffer.from(doc.body, 'base64');
  const sig = Buffer.from(doc.sig, 'base64');
  let good = false;
  try {
    good = sig.length === 64 && verify(null, bodyBytes, key, sig);
  } catch {
    good = false;
  }
  if (!good) return refuse('bad_signature', `signature by "${doc.key}" does not match the message`);
  // From here on the bytes are the city's: still checked, as a city tool can have bugs.
  let body: unknown;
  try {
    body = JSON.parse(bodyBytes.toString('utf8'));
  } catch {
    return refuse('malformed', 'signed body is not JSON');
  }
  if (!isObject(body)) return refuse('malformed', 'signed body is not a JSON object');
  for (const k of Object.keys(body))
    if (!BODY_KEYS.has(k)) return refuse('malformed', `signed body: unknown key "${k.slice(0, 40)}"`);
  if (body.kind !== o.kind)
    return refuse('wrong_kind', `signed for "${String(body.kind).slice(0, 20)}", not for a ${o.kind} message`);
  if (body.gateway !== o.gateway)
    return refuse('wrong_gateway', `signed for gateway "${String(body.gateway).slice(0, 64)}", not for ${o.gateway}`);
  const { issuedAt, expiresAt } = body;
  if (!Number.isSafeInteger(issuedAt) || !Number.isSafeInteger(expiresAt))
    return refuse('malformed', 'signed body: issuedAt and expiresAt must be ms since 1970');
  const iat = issuedAt as number;
  const exp = expiresAt as number;
  if (exp <= iat) return refuse('malformed', 'signed body: expiresAt must be after issuedAt');
  if (exp - iat > o.maxLifetimeMs)
    return refuse(
      'too_long_lived',
      `valid for ${Math.round((exp - iat) / 1000)} s, longer than the ${Math.round(o.maxLifetimeMs / 1000)} s a ${o.kind} may be`,
    );
  if (!o.ignoreTime && iat > o.now + (o.skewMs ?? DEFAULT_SKEW_MS))
    return refuse('not_yet_valid', `issued at ${iso(iat)}, ahead of this gateway's clock (${iso(o.now)})`);
  if (!o.ignoreTime && o.now > exp) return refuse('expired', `expired at ${iso(exp)} (now ${iso(o.now)})`);
  if (!isObject(body.message)) return refuse('malformed', 'signed body: message must be a JSON object');
  return { ok: true, key: doc.key, body: body as unknown as SignedBody, bodyBytes };
}

export interface SignOptions {
  kind: SignedKind;
  gateway: string;
  message: Record<string, unknown>;
  issuedAt: number;
  expiresAt: number;
  keyName: string;
  privateKey: KeyObject;
}

/** The city side: the envelope, as the bytes to publish. */
export function signMessage(o: SignOptions): Buffer {
  if (!KEY_NAME.test(o.keyName)) throw new Error(`key name "${o.keyName}" must be letters, digits, . _ - (≤ 64)`);
  const body: SignedBody = {
    kind: o.kind,
    gateway: o.gateway,
    issuedAt: o.issuedAt,
    expiresAt: o.expiresAt,
    message: o.message,
  };
  const bodyBytes = Buffer.from(JSON.stringify(body), 'utf8');
  const sig = sign(null, bodyBytes, o.privateKey);
  const env: SignedEnvelope = {
    v: SIGNED_VERSION,
    key: o.keyName,
    body: bodyBytes.toString('base64'),
    sig: sig.toString('base64'),
  };
  return Buffer.from(JSON.stringify(env), 'utf8');
}

/** An Ed25519 public key from PEM (SPKI) text; throws with a plain sentence otherwise. */
export function parsePublicKey(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`not an Ed25519 key (${key.asymmetricKeyType})`);
  return key;
}

/** An Ed25519 private key from PEM (PKCS#8) text. */
export function parsePrivateKey(pem: string): KeyObject {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`not an Ed25519 key (${key.asymmetricKeyType})`);
  return key;
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}
