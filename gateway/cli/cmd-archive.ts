import { LangbiangError } from '../core/errors.js';

/**
 * `langbiang archive`: a receiver database's days as Parquet (cloud-sync/city/archive.ts). By
 * default every closed day (before today, UTC) not archived yet; `--day` any day, again if need be.
 */
export async function runArchive(o: { receiverDb: string; out: string; day?: string; json?: boolean }): Promise<void> {
  if (!o.out) throw new LangbiangError('USAGE', '--out DIR is needed (where the Parquet files go)');
  const { openReceiverStore } = await import('../../cloud-sync/receiver/index.js');
  const { archiveDay, closedDaysToArchive, leftoverTempDirs } = await import('../../cloud-sync/city/archive.js');
  const { isDay } = await import('../../cloud-sync/city/days.js');
  if (o.day !== undefined && !isDay(o.day))
    throw new LangbiangError('USAGE', `--day ${JSON.stringify(o.day)}: not a date (YYYY-MM-DD)`);
  const store = await openReceiverStore(o.receiverDb, { readonly: true });
  const done = [];
  try {
    const days = o.day ? [o.day] : await closedDaysToArchive(store, o.out);
    for (const day of days) {
      const r = await archiveDay(store, o.out, day);
      done.push(r);
      if (!o.json) {
        process.stdout.write(
          r.readings === 0
            ? `${day}: no readings, nothing written\n`
            : `${day}: ${r.readings} readings of ${r.gateways} gateways → ${r.dir}` +
                `${r.textValuesNulled ? ` (${r.textValuesNulled} text values left null)` : ''}\n`,
        );
      }
    }
    if (!o.json && days.length === 0) process.stdout.write('every closed day is archived already\n');
  } finally {
    await store.close();
  }
  if (o.json) process.stdout.write(`${JSON.stringify({ days: done }, null, 2)}\n`);
  const left = leftoverTempDirs(o.out);
  if (left.length)
    process.stderr.write(
      `langbiang: temp directories of an interrupted run are left in ${o.out}: ${left.join(', ')}\n`,
    );
}
