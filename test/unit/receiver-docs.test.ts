import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openReceiverStore } from '../../cloud-sync/receiver/index.js';

/**
 * docs/receiver.md describes the receiver's tables for analysts who query them directly: every
 * column and index the receiver really creates must be there, under its table.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const doc = readFileSync(join(ROOT, 'docs/receiver.md'), 'utf8');

function section(table: string): string {
  const start = doc.indexOf(`### \`${table}\``);
  expect(start, `docs/receiver.md has a section for ${table}`).toBeGreaterThan(0);
  const end = doc.indexOf('\n### ', start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
}

describe('docs/receiver.md and the receiver schema', () => {
  it('documents every column and index of the tables a receiver creates', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'lb-recv-docs-')), 'city.db');
    const store = await openReceiverStore(file);
    await store.close();
    const db = new Database(file, { readonly: true });
    try {
      for (const [table, pgName] of [
        ['readings', 'langbiang_readings'],
        ['events', 'langbiang_events'],
      ] as const) {
        const text = section(pgName);
        const columns = (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
        expect(columns.length).toBeGreaterThan(5);
        for (const c of columns) expect(text, `${table}.${c}`).toMatch(new RegExp(`\`${c}\``));
        const indexes = (
          db
            .prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL`)
            .all(table) as {
            name: string;
          }[]
        ).map((i) => i.name);
        // PostgreSQL names them with the table's prefix
        for (const i of indexes) expect(text, `index ${i}`).toContain(`langbiang_${i}`);
      }
    } finally {
      db.close();
    }
  });

  it('says the units of the time columns', () => {
    expect(section('langbiang_readings')).toMatch(
      /`ts` \| bigint \| when the reading was taken: \*\*milliseconds since 1970-01-01 UTC\*\*/,
    );
  });
});
