import { LangbiangError } from '../core/errors.js';

/** `langbiang retention`: drops a receiver database's readings older than N whole UTC days. */
export async function runRetention(o: { receiverDb: string; keepDays: string }): Promise<void> {
  const keep = Number(o.keepDays);
  if (!Number.isInteger(keep) || keep < 1)
    throw new LangbiangError('USAGE', `--keep-days ${JSON.stringify(o.keepDays)}: a whole number of days, at least 1`);
  const { openReceiverStore } = await import('../../cloud-sync/receiver/index.js');
  const store = await openReceiverStore(o.receiverDb);
  try {
    // today counts as one of the days kept
    const before = (Math.floor(Date.now() / 86_400_000) - keep + 1) * 86_400_000;
    const days = await store.dropDaysBefore(before);
    process.stdout.write(
      days.length
        ? `removed the readings of ${days.length} days (${days[0]} … ${days[days.length - 1]})\n`
        : 'no day older than the retention\n',
    );
  } finally {
    await store.close();
  }
}
