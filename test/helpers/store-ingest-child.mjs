// Ingests readings into a store until killed, reporting each committed seq on stdout.
// argv: STORE_MODULE_URL DATA_DIR SYNCHRONOUS
// stdout lines: "open <lastSeq> <epoch>" once, then "committed <lastSeq>" after each flush.
const [moduleUrl, dataDir, synchronous] = process.argv.slice(2);
const { Store } = await import(moduleUrl);

const store = Store.open({ dataDir, synchronous, batchMaxReadings: 40, batchMaxDelayMs: 5 });
process.stdout.write(`open ${store.lastSeq()} ${store.epoch}\n`);

const bootId = `child-${process.pid}`;
let i = 0;
let ticks = 0;
setInterval(() => {
  const batch = [];
  for (let k = 0; k < 7; k++, i++) {
    batch.push({
      device: `dev-${i % 4}`,
      point: i % 2 ? 'temperature' : 'moisture',
      value: (i % 1000) / 10,
      quality: 'good',
      ts: Date.now(),
      mono: Math.round(performance.now()),
      bootId,
      synced: true,
      unit: '°C',
    });
  }
  // append may commit on its own (batchMaxReadings) and the timer commits too: only flush()'s
  // result is reported, so every reported seq is one the store has said is committed.
  store.append(batch);
  if (++ticks % 3 === 0) {
    store.flush();
    process.stdout.write(`committed ${store.lastSeq()}\n`);
  }
}, 1);
