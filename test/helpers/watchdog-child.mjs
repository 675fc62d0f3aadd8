// A process that pings systemd's watchdog like `langbiang start` does, then blocks its own event
// loop for a while (as a runaway synchronous call would) and recovers. Prints JSON lines with the
// wall times of the block so the test can compare them with the pings' receipt times.
import { systemdWatchdog } from '../../dist/gateway/systemd/index.js';

const blockAfterMs = Number(process.argv[2] ?? 1200);
const blockMs = Number(process.argv[3] ?? 2000);
const runAfterMs = Number(process.argv[4] ?? 1500);
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

const wd = systemdWatchdog({ onError: (message) => say({ error: message }) });
if (!wd) {
  say({ error: 'no NOTIFY_SOCKET' });
  process.exit(2);
}
wd.ready('test child');
say({ ready: Date.now(), intervalMs: wd.intervalMs });
setTimeout(() => {
  const blockStart = Date.now();
  say({ blockStart });
  // Atomics.wait blocks the main thread exactly like a busy loop would, without burning a core.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, blockMs);
  say({ blockEnd: Date.now() });
  setTimeout(() => {
    say({ done: Date.now() });
    process.exit(0);
  }, runAfterMs);
}, blockAfterMs);
