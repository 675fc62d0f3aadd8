import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LangbiangError } from '../core/errors.js';
import { type ExportRow, writeExport } from '../export/index.js';
import { STORE_FILE, Store } from '../store/index.js';
import { parseTimeArg } from './output.js';

export async function runExport(o: {
  dataDir?: string;
  receiverDb?: string;
  device?: string;
  point?: string;
  from?: string;
  to?: string;
  format: 'csv' | 'jsonl' | 'ngsi-ld';
  gatewayConfigs?: string;
  context?: string;
}): Promise<void> {
  if (o.receiverDb && o.dataDir) throw new LangbiangError('USAGE', 'give either --data-dir or --receiver-db, not both');
  if (!o.dataDir && !o.receiverDb) {
    throw new LangbiangError(
      'USAGE',
      'give --data-dir DIR (the gateway data directory) or --receiver-db URL (a receiver database)',
    );
  }
  let from: number | undefined;
  let to: number | undefined;
  try {
    from = o.from ? parseTimeArg(o.from) : undefined;
    to = o.to ? parseTimeArg(o.to) : undefined;
  } catch (err) {
    throw new LangbiangError('USAGE', (err as Error).message);
  }
  if (o.format === 'ngsi-ld') {
    await (await import('./export-ngsi-ld.js')).runNgsiLdExport({ ...o, from, to }, process.stdout);
    return;
  }
  if (o.gatewayConfigs || o.context)
    throw new LangbiangError('USAGE', '--gateway-configs and --context need --format ngsi-ld');
  if (o.receiverDb) {
    await exportReceiverDb(o.receiverDb, { device: o.device, point: o.point, from, to }, o.format);
    return;
  }
  const dir = resolve(o.dataDir!);
  if (!existsSync(join(dir, STORE_FILE)))
    throw new LangbiangError('USAGE', `no gateway database in ${dir} (expected ${STORE_FILE})`);
  // Read-only: safe beside a running gateway (SQLite WAL readers never block the writer).
  const store = Store.open({ dataDir: dir, readonly: true });
  try {
    const rows = store.iterate({ device: o.device, point: o.point, from, to });
    await writeExport(rows, o.format, process.stdout);
  } finally {
    store.close();
  }
}

/** A receiver's readings, `gateway` first, ordered by gateway, epoch, seq (DESIGN.md "Export columns"). */
async function exportReceiverDb(
  url: string,
  q: { device?: string; point?: string; from?: number; to?: number },
  format: 'csv' | 'jsonl',
): Promise<void> {
  const { openReceiverStore } = await import('../../cloud-sync/receiver/index.js');
  const store = await openReceiverStore(url, { readonly: true });
  try {
    let first = true;
    for await (const page of store.readings(q)) {
      const rows: ExportRow[] = page.map((r) => ({
        gateway: r.gateway,
        seq: r.seq,
        device: r.device,
        point: r.point,
        ts: r.ts,
        value: r.value,
        quality: r.quality,
        ...(r.unit ? { unit: r.unit } : {}),
        // not carried to the city; the export does not print them
        mono: 0,
        bootId: '',
        synced: true,
      }));
      await writeExport(rows, format, process.stdout, { withGateway: true, header: first });
      first = false;
    }
    // an empty export still gets its CSV header
    if (first) await writeExport([], format, process.stdout, { withGateway: true });
  } finally {
    await store.close();
  }
}
