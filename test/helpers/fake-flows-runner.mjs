// Stands in for flows/host/runner.js in the supervisor's tests: a real child process that
// misbehaves on demand (FAKE_MODE), without the seconds Node-RED takes to start.
const mode = process.env.FAKE_MODE;
const send = (m) => process.connected && process.send(m);
const hold = [];
process.on('message', (m) => {
  if (m.t === 'ping') send({ t: 'pong', n: m.n, rss: process.memoryUsage.rss(), heapUsed: 0 });
  if (m.t !== 'init') return;
  if (mode === 'crash') {
    setTimeout(() => process.exit(7), 20);
    return;
  }
  send({ t: 'ready', port: 1 });
  if (mode === 'hang')
    setTimeout(() => {
      for (;;) {}
    }, 200);
  if (mode === 'rss') setInterval(() => hold.push(Buffer.alloc(16 * 1024 * 1024, 1)), 50);
});
process.on('disconnect', () => process.exit(0));
