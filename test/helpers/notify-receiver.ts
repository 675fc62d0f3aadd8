import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./notify-receiver.py', import.meta.url));

export interface NotifyMessage {
  /** wall ms when the receiver got it */
  t: number;
  fields: Record<string, string>;
}

/**
 * A real AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET (Node cannot bind one,
 * so a few lines of python3 do). Messages are kept with the receiver's own receipt time, so a
 * busy test process cannot blur when a ping really arrived.
 */
export interface NotifyReceiver {
  socket: string;
  messages: NotifyMessage[];
  waitFor(pred: (m: NotifyMessage[]) => boolean, timeoutMs: number, what: string): Promise<void>;
  close(): void;
}

export async function startNotifyReceiver(socketPath: string): Promise<NotifyReceiver> {
  if (spawnSync('python3', ['--version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('python3 is needed to stand in for the systemd notify socket (Debian package python3-minimal)');
  }
  const child: ChildProcess = spawn('python3', [SCRIPT, socketPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const messages: NotifyMessage[] = [];
  let buf = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      nl = buf.indexOf('\n');
      const { t, msg } = JSON.parse(line) as { t: number; msg: string };
      const fields: Record<string, string> = {};
      for (const kv of msg.split('\n')) {
        const i = kv.indexOf('=');
        if (i > 0) fields[kv.slice(0, i)] = kv.slice(i + 1);
        else if (kv) fields[kv] = '';
      }
      messages.push({ t, fields });
    }
    for (const w of [...waiters]) w();
  });
  const rx: NotifyReceiver = {
    socket: socketPath,
    messages,
    waitFor(pred, timeoutMs, what) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pred(messages)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `timed out waiting for ${what}; got ${JSON.stringify(messages.map((m) => m.fields))}${err ? `\n${err}` : ''}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close() {
      child.kill('SIGKILL');
    },
  };
  await rx.waitFor((m) => m.some((x) => 'LISTENING' in x.fields), 10_000, 'the notify receiver to listen');
  messages.length = 0;
  return rx;
}
