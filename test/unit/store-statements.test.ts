import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { prepareStatements } from '../../gateway/store/statements.js';

const open: Database.Database[] = [];
afterEach(() => {
  for (const db of open.splice(0)) db.close();
});

function database(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'lb-stmts-')), 'x.db');
  const db = new Database(file);
  db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)');
  db.close();
  return file;
}

describe('prepareStatements', () => {
  it('on a writable connection prepares reads and writes', () => {
    const db = new Database(database());
    open.push(db);
    const s = prepareStatements(
      db,
      false,
      { count: 'SELECT count(*) FROM t' },
      { put: 'INSERT INTO t (v) VALUES (?)' },
    );
    s.put.run('a');
    s.put.run('b');
    expect(s.count.pluck().get()).toBe(2);
  });

  it('on a read-only connection a write statement throws instead of writing or silently doing nothing', () => {
    const file = database();
    const db = new Database(file, { readonly: true, fileMustExist: true });
    open.push(db);
    const s = prepareStatements(db, true, { count: 'SELECT count(*) FROM t' }, { put: 'INSERT INTO t (v) VALUES (?)' });
    expect(s.count.pluck().get()).toBe(0);
    expect(() => s.put.run('a')).toThrow(/parameter/);
    expect(s.count.pluck().get()).toBe(0);
  });
});
