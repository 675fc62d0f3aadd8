import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LangbiangError } from '../core/errors.js';
import { writeExport } from '../export/index.js';
import { STORE_FILE, Store } from '../store/index.js';
import { parseTimeArg } from './output.js';

export async function runExport(o: {
  dataDir?: string;
  receiverDb?: string;
  device?: string;
  point?: string;
  from?: string;
  to?: string;
  format: 'csv' | 'jsonl';
}): Promise<void> {
  if (o.receiverDb) {
    throw new LangbiangError('USAGE', '--receiver-db needs the reference receiver, which is not in this release yet');
  }
  if (!o.dataDir) throw new LangbiangError('USAGE', 'give --data-dir DIR (the gateway data directory)');
  const dir = resolve(o.dataDir);
  if (!existsSync(join(dir, STORE_FILE))) throw new LangbiangError('USAGE', `no gateway database in ${dir} (expected ${STORE_FILE})`);
  let from: number | undefined;
  let to: number | undefined;
  try {
    from = o.from ? parseTimeArg(o.from) : undefined;
    to = o.to ? parseTimeArg(o.to) : undefined;
  } catch (err) {
    throw new LangbiangError('USAGE', (err as Error).message);
  }
  // Read-only: safe beside a running gateway (SQLite WAL readers never block the writer).
  const store = Store.open({ dataDir: dir, readonly: true });
  try {
    const rows = store.iterate({ device: o.device, point: o.point, from, to });
    await writeExport(rows, o.format, process.stdout);
  } finally {
    store.close();
  }
}
