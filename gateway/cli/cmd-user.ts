import { resolve } from 'node:path';
import { passwordProblem, ROLES, type Role, UserStore } from '../auth/index.js';
import { LangbiangError } from '../core/errors.js';
import { loadValidConfig } from './config-arg.js';
import { formatTable } from './output.js';

interface DirOpts {
  dataDir?: string;
  config?: string;
}

function dataDirOf(o: DirOpts): string {
  if (o.dataDir && o.config) throw new LangbiangError('USAGE', 'give --data-dir or --config, not both');
  if (o.dataDir) return resolve(o.dataDir);
  if (o.config) return resolve(loadValidConfig(o.config).gateway.dataDir);
  throw new LangbiangError('USAGE', "say where the gateway's data is: --config FILE or --data-dir DIR");
}

/** Reads the password from stdin: typed twice without echo on a terminal, else the first line of a pipe. */
async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (stdin.isTTY) {
    const first = await promptHidden('Password: ');
    const again = await promptHidden('Password again: ');
    if (first !== again) throw new LangbiangError('USAGE', 'the two passwords differ');
    return first;
  }
  let text = '';
  for await (const chunk of stdin) {
    text += String(chunk);
    if (text.length > 4096) break;
  }
  return text.split(/\r?\n/)[0] ?? '';
}

function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolvePw, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let pw = '';
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolvePw(pw);
          return;
        }
        if (ch === '\u0003') {
          finish();
          reject(new LangbiangError('USAGE', 'cancelled'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') pw = [...pw].slice(0, -1).join('');
        else pw += ch;
      }
    };
    const finish = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}

export async function runUserAdd(o: DirOpts & { name: string; role: string; replace?: boolean }): Promise<void> {
  if (!ROLES.includes(o.role as Role))
    throw new LangbiangError('USAGE', `--role must be farmer or technician, got "${o.role}"`);
  const store = UserStore.inDataDir(dataDirOf(o));
  if (!o.replace && store.get(o.name))
    throw new LangbiangError('USAGE', `user "${o.name}" already exists (use --replace to set a new password)`);
  const password = await readPassword();
  const bad = passwordProblem(password);
  if (bad) throw new LangbiangError('USAGE', bad);
  await store.add(o.name, o.role as Role, password, { replace: o.replace === true });
  process.stdout.write(`user ${o.name} (${o.role}) saved in ${store.file}\n`);
}

export async function runUserList(o: DirOpts & { json?: boolean }): Promise<void> {
  const users = UserStore.inDataDir(dataDirOf(o)).list();
  if (o.json) process.stdout.write(`${JSON.stringify(users, null, 2)}\n`);
  else
    process.stdout.write(
      `${formatTable(
        ['user', 'role', 'created'],
        users.map((u) => [u.name, u.role, u.createdAt]),
      )}\n`,
    );
}

export async function runUserRemove(o: DirOpts & { name: string }): Promise<void> {
  const store = UserStore.inDataDir(dataDirOf(o));
  if (!store.remove(o.name)) throw new LangbiangError('USAGE', `no user "${o.name}"`);
  process.stdout.write(`user ${o.name} removed\n`);
}
