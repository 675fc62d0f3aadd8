import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { MAX_DEADLINE_LEAD_MS } from '../../cloud-sync/protocol/command.js';
import { parseDuration } from '../core/duration.js';
import { describeError, LangbiangError } from '../core/errors.js';
import { KEY_NAME, parsePrivateKey, type SignedKind, signMessage } from '../core/signed.js';
import { MAX_CONFIG_LIFETIME_MS } from '../remote-config/envelope.js';

/**
 * `langbiang city …`: the city operator's side of the signed control plane. Keys are Ed25519;
 * a key's name is its file name (`NAME.key` private, `NAME.pem` public), and on the gateway the
 * public one is pinned as `<dataDir>/trust/control/NAME.pem`. Messages are signed here and
 * published to the broker (or written out with --out for another tool to publish).
 */

export interface KeygenOptions {
  name: string;
  out?: string;
  /** control (configs, commands) or release (software bundles): where the public key is pinned */
  role?: 'control' | 'release';
}

export function runKeygen(o: KeygenOptions): void {
  if (!KEY_NAME.test(o.name))
    throw new LangbiangError('USAGE', `key name ${JSON.stringify(o.name)} must be letters, digits, . _ - (≤ 64)`);
  const dir = resolve(o.out ?? '.');
  const priv = join(dir, `${o.name}.key`);
  const pub = join(dir, `${o.name}.pem`);
  for (const f of [priv, pub])
    if (existsSync(f)) throw new LangbiangError('USAGE', `${f} exists; a key is never overwritten`);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644, flag: 'wx' });
  const pinDir = o.role === 'release' ? 'release' : 'control';
  process.stdout.write(
    `private key ${priv} (keep it offline; mode 0600)\npublic key  ${pub} (pin it on gateways as <dataDir>/trust/${pinDir}/${o.name}.pem)\n`,
  );
}

export interface BrokerCliOptions {
  broker?: string;
  out?: string;
  username?: string;
  passwordFile?: string;
  passwordStdin?: boolean;
  ca?: string;
  cert?: string;
  clientKey?: string;
}

export interface SignCliOptions extends BrokerCliOptions {
  gateway: string;
  key: string;
  keyName?: string;
}

export interface CityConfigOptions extends SignCliOptions {
  file: string;
  configVersion?: string;
  watch?: string;
  expires?: string;
  retain?: boolean;
}

export interface CityCommandOptions extends SignCliOptions {
  args: string[];
  id?: string;
  deadline?: string;
  wait?: string;
}

/** Publishes a signed config; with --out, writes the signed message instead. */
export async function runCityConfig(o: CityConfigOptions): Promise<void> {
  const { key, keyName } = readSigningKey(o);
  let text: string;
  try {
    text = readFileSync(o.file, 'utf8');
  } catch (err) {
    throw new LangbiangError('USAGE', `cannot read ${o.file}: ${describeError(err)}`);
  }
  const now = Date.now();
  // a version only grows; the issue time in seconds does, without any state on the city side
  const version =
    o.configVersion === undefined ? Math.floor(now / 1000) : wholeNumber('--config-version', o.configVersion);
  const message: Record<string, unknown> = { v: 1, version, config: text };
  if (o.watch !== undefined) message.watch = o.watch;
  const lifetime = duration('--expires', o.expires ?? '7d');
  if (lifetime > MAX_CONFIG_LIFETIME_MS)
    throw new LangbiangError('USAGE', '--expires may be at most 30d (a gateway refuses a longer-lived config)');
  const payload = sign('config', o, key, keyName, message, now, lifetime);
  if (o.out !== undefined || o.broker === undefined) return writeOut(o.out, payload);
  await withBroker(o, async (client) => {
    await client.publishAsync(`langbiang/v1/${o.gateway}/config`, payload, { qos: 1, retain: o.retain !== false });
  });
  process.stdout.write(`config version ${version} for ${o.gateway} published, signed by ${keyName}\n`);
}

/** Publishes a signed command and waits for its cmd/result; exit 1 when the result is not ok. */
export async function runCityCommand(o: CityCommandOptions): Promise<void> {
  if (o.args.length !== 3) throw new LangbiangError('USAGE', 'expected DEVICE POINT VALUE');
  const [device, point, raw] = o.args as [string, string, string];
  const { key, keyName } = readSigningKey(o);
  const now = Date.now();
  const lead = duration('--deadline', o.deadline ?? '5m');
  if (lead > MAX_DEADLINE_LEAD_MS)
    throw new LangbiangError(
      'USAGE',
      '--deadline may be at most 1h (a command is for now; a gateway refuses a longer lead)',
    );
  const id = o.id ?? `city-${now.toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const message = { v: 1, id, device, point, value: commandValue(raw), deadline: now + lead };
  const payload = sign('command', o, key, keyName, message, now, lead);
  if (o.out !== undefined || o.broker === undefined) return writeOut(o.out, payload);
  const waitMs = duration('--wait', o.wait ?? '30s');
  const result = await withBroker(o, async (client) => {
    const resultTopic = `langbiang/v1/${o.gateway}/cmd/result`;
    const got = new Promise<Record<string, unknown>>((resolveResult, reject) => {
      const timer = setTimeout(
        () => reject(new LangbiangError('EXPIRED', `no result for command ${id} within ${waitMs / 1000} s`)),
        waitMs,
      );
      client.on('message', (topic, p) => {
        if (topic !== resultTopic) return;
        try {
          const r = JSON.parse(p.toString('utf8')) as Record<string, unknown>;
          if (r.id !== id) return;
          clearTimeout(timer);
          resolveResult(r);
        } catch {
          // someone else's garbage on the topic
        }
      });
    });
    await client.subscribeAsync(resultTopic, { qos: 1 });
    await client.publishAsync(`langbiang/v1/${o.gateway}/cmd`, payload, { qos: 1 });
    return got;
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (result.ok !== true) process.exitCode = 1;
}

function sign(
  kind: SignedKind,
  o: SignCliOptions,
  key: KeyObject,
  keyName: string,
  message: Record<string, unknown>,
  now: number,
  lifetimeMs: number,
): Buffer {
  return signMessage({
    kind,
    gateway: o.gateway,
    message,
    issuedAt: now,
    expiresAt: now + lifetimeMs,
    keyName,
    privateKey: key,
  });
}

export function readSigningKey(o: SignCliOptions): { key: KeyObject; keyName: string } {
  let key: KeyObject;
  try {
    key = parsePrivateKey(readFileSync(o.key, 'utf8'));
  } catch (err) {
    throw new LangbiangError('USAGE', `${o.key} is not a usable Ed25519 private key: ${describeError(err)}`);
  }
  const keyName = o.keyName ?? basename(o.key).replace(/\.(key|pem)$/, '');
  if (!KEY_NAME.test(keyName))
    throw new LangbiangError(
      'USAGE',
      `key name ${JSON.stringify(keyName)} must be letters, digits, . _ - (use --key-name)`,
    );
  return { key, keyName };
}

/** `true`/`false` are booleans, numbers are numbers, anything else is sent as text. */
function commandValue(raw: string): number | boolean | string {
  if (raw === 'true' || raw === 'false') return raw === 'true';
  const n = Number(raw);
  return raw.trim() !== '' && Number.isFinite(n) ? n : raw;
}

function wholeNumber(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new LangbiangError('USAGE', `${name} must be a positive whole number, not ${JSON.stringify(v.slice(0, 40))}`);
  return n;
}

/** A CLI duration: the one grammar, with a unit (a bare number there has none to count in). */
export function duration(name: string, v: string): number {
  let ms: number;
  try {
    ms = parseDuration(v);
  } catch (err) {
    throw new LangbiangError('USAGE', `${name}: ${(err as Error).message}`);
  }
  if (ms <= 0)
    throw new LangbiangError('USAGE', `${name} must be longer than 0, not ${JSON.stringify(v.slice(0, 40))}`);
  return ms;
}

function writeOut(out: string | undefined, payload: Buffer): void {
  if (out === undefined || out === '-') process.stdout.write(`${payload.toString('utf8')}\n`);
  else writeFileSync(out, payload);
}

function readFileFor(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new LangbiangError('USAGE', `cannot read the ${what} ${file}: ${describeError(err)}`);
  }
}

async function readStdinLine(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return text.split(/\r?\n/)[0] ?? '';
}

type MqttClient = import('mqtt').MqttClient;

export async function withBroker<T>(o: BrokerCliOptions, fn: (client: MqttClient) => Promise<T>): Promise<T> {
  const url = o.broker as string;
  if (!/^(mqtts?|wss?):\/\//i.test(url))
    throw new LangbiangError(
      'USAGE',
      `--broker ${JSON.stringify(url)} is not a broker URL (mqtt://, mqtts://, ws://, wss://)`,
    );
  // argv is visible to every user of the machine (ps, /proc)
  if (/^[a-z]+:\/\/[^/@]*:[^/@]*@/i.test(url))
    throw new LangbiangError('USAGE', 'do not put a password in --broker; use --password-file or --password-stdin');
  if ((o.passwordFile || o.passwordStdin) && !o.username)
    throw new LangbiangError('USAGE', 'a password needs --username');
  const password = o.passwordFile
    ? readFileFor('password file', o.passwordFile)
        .toString('utf8')
        .replace(/\r?\n$/, '')
    : o.passwordStdin
      ? await readStdinLine()
      : undefined;
  const mqtt = await import('mqtt');
  const client = await mqtt
    .connectAsync(url, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      clientId: `langbiang-city-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      ...(o.username ? { username: o.username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(o.ca ? { ca: readFileFor('CA certificate', o.ca) } : {}),
      ...(o.cert ? { cert: readFileFor('client certificate', o.cert) } : {}),
      ...(o.clientKey ? { key: readFileFor('client key', o.clientKey) } : {}),
    })
    .catch((err: unknown) => {
      throw new LangbiangError('USAGE', `cannot connect to the broker: ${describeError(err)}`);
    });
  try {
    return await fn(client);
  } finally {
    await client.endAsync().catch(() => {});
  }
}
