import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LangbiangError } from './core/errors.js';
import { lookupOwner, type Owner } from './provision/files.js';

/** The flows' own folder in the data directory (Node-RED's userDir). */
export const FLOWS_SUBDIR = 'flows';

/**
 * Makes the data directory a boundary for a Node-RED child that runs as `user` (`flows.user`):
 *
 *   - the data directory is 0711: the flows user may pass through it to its own folder, not list it;
 *   - everything else in it loses every permission for others (secrets/, users.json, the store,
 *     remote-config/, …) and the gateway's umask becomes 0027, so files made later are closed too;
 *   - `flows/` belongs to the flows user, 0700.
 *
 * Only root (or CAP_SETUID + CAP_SETGID + CAP_CHOWN) can do this and start a child as another
 * user; otherwise it refuses with a sentence saying so (the chown comes first and fails with
 * EPERM), nothing is changed, and the flows do not start.
 */
export function prepareFlowsBoundary(dataDir: string, user: string, passwd?: string): Owner {
  const owner = lookupOwner(user, passwd);
  if (owner.uid === 0) throw new LangbiangError('CONFIG_INVALID', 'flows.user: must not be root');
  try {
    const flowsDir = join(dataDir, FLOWS_SUBDIR);
    mkdirSync(flowsDir, { recursive: true, mode: 0o700 });
    // first, as it needs the privilege: a gateway without it changes nothing and says so
    chownTree(flowsDir, owner);
    chmodSync(flowsDir, 0o700);
    process.umask(0o027);
    chmodSync(dataDir, 0o711);
    for (const name of readdirSync(dataDir)) {
      if (name === FLOWS_SUBDIR) continue;
      const path = join(dataDir, name);
      const st = lstatSync(path);
      if (!st.isSymbolicLink() && (st.mode & 0o007) !== 0) chmodSync(path, st.mode & 0o7770);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    throw new LangbiangError(
      'CONFIG_INVALID',
      `flows.user: running Node-RED as ${user} needs the gateway to run as root or with CAP_SETUID, CAP_SETGID and CAP_CHOWN (docs/operations.md, "Node-RED as its own user"); the flows are not started`,
    );
  }
  return owner;
}

/** chown -R without following links: a link in the flows folder must not hand over a gateway file. */
function chownTree(path: string, owner: Owner): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  chownSync(path, owner.uid, owner.gid);
  if (st.isDirectory()) for (const name of readdirSync(path)) chownTree(join(path, name), owner);
}
