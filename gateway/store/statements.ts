import type Database from 'better-sqlite3';

/**
 * Prepares one table's statements. A read-only connection (export while the gateway runs) cannot
 * prepare writes, so there each write statement is a stand-in that takes no parameters: the store
 * never writes on such a connection (assertWritable), and if it ever did, the call would throw
 * instead of writing nothing.
 */
export function prepareStatements<R extends string, W extends string>(
  db: Database.Database,
  readonly: boolean,
  reads: Record<R, string>,
  writes: Record<W, string>,
): Record<R | W, Database.Statement> {
  const out = {} as Record<R | W, Database.Statement>;
  for (const [name, sql] of Object.entries(reads) as [R, string][]) out[name] = db.prepare(sql);
  const standIn = readonly ? db.prepare('SELECT NULL WHERE 0') : null;
  for (const [name, sql] of Object.entries(writes) as [W, string][]) out[name] = standIn ?? db.prepare(sql);
  return out;
}
