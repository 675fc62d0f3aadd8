import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename } from 'node:path';
import { describeError, LangbiangError } from '../core/errors.js';
import { KEY_NAME, parsePrivateKey } from '../core/signed.js';
import { createLogger } from '../log.js';
import { checkNgsiLdFlags, type NgsiLdCliOptions, startNgsiLdOutput } from './receiver-ngsi-ld.js';

export interface ReceiverCliOptions extends NgsiLdCliOptions {
  broker: string;
  db: string;
  group?: string;
  exclusive?: boolean;
  clientId?: string;
  username?: string;
  passwordFile?: string;
  ca?: string;
  cert?: string;
  key?: string;
  sessionExpiry?: string;
  statsInterval?: string;
  landAbove?: string;
  /** serve GET /healthz on this port (127.0.0.1, or --health-host) */
  healthPort?: string;
  healthHost?: string;
  /** Ed25519 private key (PEM) that signs the end-to-end acks; its file name (NAME.key) names it */
  ackKey?: string;
  /** seconds: in live operation at most one ack per gateway this often (a gateway's prompt asks go at once) */
  ackPace?: string;
  verbose?: boolean;
}

/** `--ack-key NAME.key`: a receiver key made by `langbiang city keygen NAME`; gateways pin NAME.pem. */
function readAckKey(file: string): { name: string; key: KeyObject } {
  const name = basename(file).replace(/\.(key|pem)$/, '');
  if (!KEY_NAME.test(name))
    throw new LangbiangError('USAGE', `--ack-key ${file}: the file name must be NAME.key (letters, digits, . _ -)`);
  try {
    return { name, key: parsePrivateKey(readFile('ack key', file).toString('utf8')) };
  } catch (err) {
    if (err instanceof LangbiangError) throw err;
    throw new LangbiangError('USAGE', `--ack-key ${file} is not an Ed25519 private key (${describeError(err)})`);
  }
}

function readFile(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new LangbiangError('USAGE', `cannot read the ${what} ${file}: ${describeError(err)}`);
  }
}

function positiveInt(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new LangbiangError('USAGE', `${name} must be a whole number, not ${JSON.stringify(v)}`);
  return n;
}

/**
 * `langbiang receiver --broker URL --db URL`: the reference cloud receiver. Runs until SIGINT or
 * SIGTERM; the message being written is finished (and acknowledged) before it exits.
 */
export async function runReceiver(o: ReceiverCliOptions): Promise<void> {
  if (!/^(mqtts?|wss?):\/\//i.test(o.broker)) {
    throw new LangbiangError(
      'USAGE',
      `--broker ${JSON.stringify(o.broker)} is not a broker URL (use mqtt://, mqtts://, ws:// or wss://)`,
    );
  }
  if (/^[a-z]+:\/\/[^/@]*:[^/@]*@/i.test(o.broker)) {
    // argv is visible to every user of the machine (ps, /proc)
    throw new LangbiangError('USAGE', 'do not put a password in --broker; use --username and --password-file');
  }
  if (/^postgres(ql)?:\/\/[^/@]*:[^/@]*@/i.test(o.db)) {
    throw new LangbiangError(
      'USAGE',
      'do not put a password in --db; use a ~/.pgpass file or the PGPASSWORD environment variable (the pg driver reads both)',
    );
  }
  if (o.passwordFile && !o.username) throw new LangbiangError('USAGE', '--password-file needs --username');
  checkNgsiLdFlags(o);
  const sessionExpirySeconds = positiveInt('--session-expiry', o.sessionExpiry, 86_400);
  const statsEverySeconds = positiveInt('--stats-interval', o.statsInterval, 60);
  const ackPaceSeconds = positiveInt('--ack-pace', o.ackPace, 60);
  // the store's own default (sqlite-landing.ts) unless the flag is given
  const landAbove = o.landAbove === undefined ? undefined : positiveInt('--land-above', o.landAbove, 0);
  if (ackPaceSeconds > 60)
    throw new LangbiangError(
      'USAGE',
      '--ack-pace must be at most 60 seconds: gateways resend what stays unconfirmed for sync.confirmTimeout (2 minutes by default)',
    );
  const healthPort = o.healthPort === undefined ? undefined : positiveInt('--health-port', o.healthPort, 0);
  const password = o.passwordFile
    ? readFile('password file', o.passwordFile)
        .toString('utf8')
        .replace(/\r?\n$/, '')
    : undefined;
  const tls = {
    ca: o.ca ? readFile('CA certificate', o.ca) : undefined,
    cert: o.cert ? readFile('client certificate', o.cert) : undefined,
    key: o.key ? readFile('client key', o.key) : undefined,
  };

  // a broken TLS file names its flag now, not as OpenSSL's text at the first connect
  const { checkPemFiles } = await import('../config/tls-files.js');
  const pem = checkPemFiles({ ca: o.ca, cert: o.cert, key: o.key }, { ca: '--ca', cert: '--cert', key: '--key' });
  if (pem.problems.length > 0)
    throw new LangbiangError('USAGE', pem.problems.map((p) => `--${p.which} ${p.message}`).join('\n'));

  const ackKey = o.ackKey ? readAckKey(o.ackKey) : undefined;
  const log = createLogger({ name: 'langbiang-receiver', level: o.verbose ? 'debug' : undefined });
  for (const w of pem.warnings) log.warn({ flag: `--${w.which}` }, `--${w.which} ${w.message}`);
  const { openReceiverStore, Receiver } = await import('../../cloud-sync/receiver/index.js');
  const store = await openReceiverStore(o.db, {
    landAbove,
    onError: (message) => log.error({ err: message }, 'moving landed readings into rows failed; retrying in 5 s'),
  });
  log.info({ db: store.location, backend: store.backend }, 'receiver database ready');

  const receiver = new Receiver({
    brokerUrl: o.broker,
    store,
    group: o.group,
    exclusive: o.exclusive === true,
    clientId: o.clientId ?? `langbiang-receiver-${hostname()}`,
    sessionExpirySeconds,
    username: o.username,
    password,
    tls,
    logger: log,
    ackKey,
    ackPaceMs: ackPaceSeconds * 1000,
  });
  if (ackKey) log.info({ key: ackKey.name }, 'end-to-end acks are signed');
  const ngsiLd = await startNgsiLdOutput(o, o.db, log);
  await receiver.start();
  if (healthPort !== undefined) {
    const { startReceiverHealth } = await import('./receiver-health.js');
    const { redactUrl } = await import('../../cloud-sync/receiver/index.js');
    const server = await startReceiverHealth(receiver, {
      port: healthPort,
      host: o.healthHost,
      broker: redactUrl(o.broker),
    });
    server.unref();
    const addr = server.address();
    log.info({ port: typeof addr === 'object' && addr ? addr.port : healthPort }, 'receiver health on /healthz');
  }

  const statsTimer =
    statsEverySeconds > 0
      ? setInterval(
          () =>
            log.info(
              { ...receiver.stats(), landedReadings: store.landedReadings?.(), ngsiLd: ngsiLd?.stats() },
              'receiver stats',
            ),
          statsEverySeconds * 1000,
        )
      : undefined;
  statsTimer?.unref();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(
      { signal },
      `receiver stopping (${signal}): finishing the message in hand, then disconnecting; the broker keeps the session`,
    );
    if (statsTimer) clearInterval(statsTimer);
    try {
      await ngsiLd?.stop();
      await receiver.stop();
    } catch (err) {
      log.error({ err: describeError(err) }, 'receiver stop failed');
    }
    log.flush?.();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('unhandledRejection', (reason) => log.error({ err: describeError(reason) }, 'unhandled rejection'));
}
