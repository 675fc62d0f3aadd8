import Database from 'better-sqlite3';
import { rmSync, mkdirSync } from 'node:fs';
const variant = process.argv[2];
const N = +(process.argv[3] ?? 500000);
const dir = '/work/wt-11d/.bench-scratch/ins'; rmSync(dir, { recursive: true, force: true }); mkdirSync(dir, { recursive: true });
const db = new Database(dir + '/city.db');
if (variant.includes('page16k')) db.pragma('page_size = 16384');
db.pragma('journal_mode = WAL'); db.pragma('synchronous = FULL');
if (variant.includes('cache')) db.pragma('cache_size = -65536');
if (variant.includes('ckpt')) db.pragma('wal_autocheckpoint = 10000');
db.exec(`CREATE TABLE readings (gateway TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, ts INTEGER NOT NULL, value_num REAL, value_text TEXT, unit TEXT, quality TEXT NOT NULL, received_at INTEGER NOT NULL, PRIMARY KEY (gateway, epoch, seq)) WITHOUT ROWID;`);
if (!variant.includes('noidx1')) db.exec('CREATE INDEX readings_device_ts ON readings (device, ts);');
if (!variant.includes('noidx2')) db.exec('CREATE INDEX readings_ts ON readings (ts);');
const gw = 'dl-bench-0001', ep = 'a1b2c3d4e5f60718';
const conflict = variant.includes('plain') ? '' : ' ON CONFLICT DO NOTHING';
const K = variant.includes('multi') ? 100 : 1;
const row = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
const ins = db.prepare(`INSERT INTO readings VALUES ${Array(K).fill(row).join(',')}${conflict}`);
const ins1 = db.prepare(`INSERT INTO readings VALUES ${row}${conflict}`);
const t0 = Date.now(); const ts0 = Date.now() - 86400000;
const cpu0 = process.cpuUsage();
const B = 5000;
for (let b = 0; b < N / B; b++) {
  const rows = [];
  for (let i = b * B; i < (b + 1) * B; i++) rows.push({ seq: i + 1, device: `dev-${((i / 15) % 40) | 0}`, point: `p${i % 15}`, ts: ts0 + Math.floor(i / 600) * 1000, value: 20 + (i % 50) / 10, unit: '°C', quality: 'good' });
  const now = Date.now();
  db.transaction(() => {
    if (K === 1) { for (const r of rows) ins1.run(gw, ep, r.seq, r.device, r.point, r.ts, r.value, null, r.unit, r.quality, now); return; }
    const args = new Array(K * 11);
    let i = 0;
    for (; i + K <= rows.length; i += K) {
      for (let j = 0; j < K; j++) { const r = rows[i + j]; const o = j * 11; args[o]=gw; args[o+1]=ep; args[o+2]=r.seq; args[o+3]=r.device; args[o+4]=r.point; args[o+5]=r.ts; args[o+6]=r.value; args[o+7]=null; args[o+8]=r.unit; args[o+9]=r.quality; args[o+10]=now; }
      ins.run(args);
    }
    for (; i < rows.length; i++) { const r = rows[i]; ins1.run(gw, ep, r.seq, r.device, r.point, r.ts, r.value, null, r.unit, r.quality, now); }
  }).immediate();
}
const c = process.cpuUsage(cpu0);
console.log(variant, 'wall', Date.now() - t0, 'cpu s/M', (((c.user + c.system) / 1e6) * 1e6 / N).toFixed(2), 'user', (c.user/1e6*1e6/N).toFixed(2), 'sys', (c.system/1e6*1e6/N).toFixed(2));
