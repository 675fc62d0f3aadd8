import { rmSync, mkdirSync } from 'node:fs';
const mod = process.argv[2];
const { SqliteReceiverStore } = await import(mod);
const N = +(process.argv[3] ?? 500000);
const dir = '/work/wt-11d/.bench-scratch/st' + process.pid; rmSync(dir, { recursive: true, force: true }); mkdirSync(dir, { recursive: true });
const st = new SqliteReceiverStore(dir + '/city.db'); await st.init();
const ts0 = Date.now() - 86400000; const B = 5000;
const batches = [];
for (let b = 0; b < N / B; b++) {
  const readings = [];
  for (let i = b * B; i < (b + 1) * B; i++) readings.push({ seq: i + 1, device: `dev-${((i / 15) % 40) | 0}`, point: `p${i % 15}`, ts: ts0 + Math.floor(i / 600) * 1000, value: 20 + (i % 50) / 10, unit: '°C', quality: 'good' });
  batches.push({ v: 2, gateway: 'dl-bench-0001', epoch: 'a1b2c3d4e5f60718a1b2c3d4e5f60718', firstSeq: b * B + 1, lastSeq: (b + 1) * B, readings });
}
const c0 = process.cpuUsage(); const t0 = Date.now();
if (!process.env.SKIP) for (const b of batches) await st.writeTelemetry(b, Date.now());
const c = process.cpuUsage(c0);
console.log(mod.split('/').slice(-5,-3).join('/'), 'wall', Date.now() - t0, 'cpu s/M', ((c.user + c.system) / N).toFixed(2), 'user', (c.user / N).toFixed(2), 'sys', (c.system / N).toFixed(2));
await st.close(); rmSync(dir, { recursive: true, force: true });
