import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

/**
 * A real Mosquitto 2 broker for one test: generated config in a temp dir, a free loopback port,
 * stop/start on the same port (broker-restart tests), SIGKILL, and a TLS variant whose
 * certificates are made here with `openssl`.
 */
export interface MosquittoTls {
  /** PEM file paths */
  ca: string;
  cert: string;
  key: string;
  /** the temp dir holding every generated file (CA key, server cert…) */
  dir: string;
}

export interface MosquittoOptions {
  /** TLS listener with `require_certificate true` and `use_identity_as_username true` */
  tls?: boolean;
  /** anonymous clients refused; this one user accepted */
  password?: { user: string; pass: string };
  /** keep retained messages and sessions across stop()/start() (default true) */
  persistence?: boolean;
  /** CN of the generated client certificate (becomes the MQTT username); default `langbiang-test-client` */
  clientCn?: string;
}

export interface Mosquitto {
  port: number;
  url: string;
  tls?: MosquittoTls;
  /** the broker's temp dir (config, log, persistence) */
  dir: string;
  /** graceful stop (SIGTERM; persistence is saved); start() brings it back on the same port */
  stop(): Promise<void>;
  start(): Promise<void>;
  /**
   * SIGKILL: no persistence save, so messages the broker had acknowledged but not yet delivered
   * are lost (as with a real broker crash). For "restart the broker" tests use stop()/start().
   */
  kill(): Promise<void>;
  /** kill and remove the temp dir: call it in afterAll/afterEach */
  close(): Promise<void>;
  /** the broker's log so far (for failure messages) */
  log(): string;
  running(): boolean;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test that forgets close() must not leave brokers behind the worker.
  process.on('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

export function mosquittoBinary(): string {
  for (const p of ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto']) if (existsSync(p)) return p;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, 'mosquitto');
    if (dir && existsSync(p)) return p;
  }
  throw new Error(
    'mosquitto is not installed (looked in /usr/sbin and PATH): install the Debian package `mosquitto` (npm test does it in its pretest step)',
  );
}

/** `$7$` PBKDF2-SHA512 entry as mosquitto_passwd writes it, so the test needs no extra program. */
function passwordLine(user: string, pass: string): string {
  const salt = randomBytes(12);
  const iterations = 101;
  const hash = pbkdf2Sync(pass, salt, iterations, 64, 'sha512');
  return `${user}:$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}\n`;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer; code?: string };
    if (e.code === 'ENOENT') throw new Error('openssl is not installed: install the Debian package `openssl`');
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString() ?? String(err)}`);
  }
}

/** CA, a server cert for 127.0.0.1/localhost (SAN), a client cert — EC P-256 keys (fast to make). */
export function makeCertificates(
  dir: string,
  clientCn = 'langbiang-test-client',
): MosquittoTls & { serverCert: string; serverKey: string } {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=langbiang-test-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  writeFileSync(
    path.join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  writeFileSync(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '2',
      '-extfile',
      'server.ext',
    ],
    dir,
  );
  openssl(['req', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', `/CN=${clientCn}`], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'client.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'client.crt',
      '-days',
      '2',
      '-extfile',
      'client.ext',
    ],
    dir,
  );
  return {
    dir,
    ca: path.join(dir, 'ca.crt'),
    cert: path.join(dir, 'client.crt'),
    key: path.join(dir, 'client.key'),
    serverCert: path.join(dir, 'server.crt'),
    serverKey: path.join(dir, 'server.key'),
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const bin = mosquittoBinary();
  installExitHook();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'langbiang-mosquitto-'));
  const logFile = path.join(dir, 'mosquitto.log');
  const confFile = path.join(dir, 'mosquitto.conf');
  const tls = opts.tls ? makeCertificates(dir, opts.clientCn) : undefined;
  const persistence = opts.persistence ?? true;

  const writeConfig = (port: number) => {
    const lines = [
      `listener ${port} 127.0.0.1`,
      // as root mosquitto drops to user `mosquitto`, which cannot read our temp dir
      `user ${os.userInfo().username}`,
      `persistence ${persistence}`,
      `persistence_location ${dir}/`,
      'autosave_interval 0',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'max_queued_messages 100000',
    ];
    if (opts.password) {
      const pwFile = path.join(dir, 'passwd');
      writeFileSync(pwFile, passwordLine(opts.password.user, opts.password.pass), { mode: 0o600 });
      lines.push('allow_anonymous false', `password_file ${pwFile}`);
    } else {
      lines.push('allow_anonymous true');
    }
    if (tls) {
      lines.push(
        `cafile ${tls.ca}`,
        `certfile ${tls.serverCert}`,
        `keyfile ${tls.serverKey}`,
        'require_certificate true',
        'use_identity_as_username true',
      );
    }
    writeFileSync(confFile, `${lines.join('\n')}\n`);
  };

  let port = 0;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    if (child) throw new Error('mosquitto is already running');
    const fd = openSync(logFile, 'a');
    const c = spawn(bin, ['-c', confFile], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child = c;
    live.add(c);
    let gone = false;
    exited = new Promise<void>((resolve) => {
      c.once('exit', () => {
        gone = true;
        live.delete(c);
        if (child === c) child = undefined;
        resolve();
      });
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (gone) throw new Error(`mosquitto exited at start on port ${port}:\n${readLog()}`);
      if (await canConnect(port)) return;
      await new Promise((r) => setTimeout(r, 30));
    }
    c.kill('SIGKILL');
    throw new Error(`mosquitto did not accept connections on port ${port} within 10 s:\n${readLog()}`);
  };

  const readLog = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');

  const signal = async (sig: NodeJS.Signals) => {
    const c = child;
    if (!c) return;
    c.kill(sig);
    await exited;
    // the kernel may take a moment to let the port go; start() must find it free
  };

  // The port from freePort() can be taken by another worker before mosquitto binds it: retry.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    writeConfig(port);
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 2) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  const m: Mosquitto = {
    port,
    url: `${tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    dir,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    start: async () => {
      // a restart right after stop can race TIME_WAIT/bind on slow boxes: retry briefly
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          await launch();
          return;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    },
    close: async () => {
      await signal('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
    log: readLog,
    running: () => child !== undefined,
  };
  if (tls) m.tls = { ca: tls.ca, cert: tls.cert, key: tls.key, dir: tls.dir };
  return m;
}
