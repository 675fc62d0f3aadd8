// Stands in for flows/host/runner.js in the flows boundary test: a real child process, started by
// the supervisor as the flows user, that tries to read what the gateway keeps to itself and writes
// what it found into its own folder (the userDir the supervisor gives it).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const send = (m) => process.connected && process.send(m);
process.on('message', (m) => {
  if (m.t === 'ping') send({ t: 'pong', n: m.n, rss: process.memoryUsage.rss(), heapUsed: 0 });
  if (m.t !== 'init') return;
  const reads = {};
  for (const file of JSON.parse(process.env.FLOW_PROBE_FILES ?? '[]')) {
    try {
      readFileSync(file);
      reads[file] = 'read';
    } catch (err) {
      reads[file] = err.code ?? String(err);
    }
  }
  const probe = { uid: process.getuid(), gid: process.getgid(), env: Object.keys(process.env).sort(), reads };
  writeFileSync(join(m.userDir, 'probe.json'), JSON.stringify(probe));
  send({ t: 'ready', port: 1 });
});
process.on('disconnect', () => process.exit(0));
