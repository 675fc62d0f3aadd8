// The console's read-only SQL box: POST /api/sql, the rows as a table, and the same rows as a CSV
// file. The gateway runs the query off its polling loop, returns at most 1000 rows and stops a
// query after 5 s (docs/panel.md, "SQL").
import { ApiError, api, h } from './api.js';

let last = null;

/** RFC 4180 cells, as `langbiang sql --format csv` writes them. */
function csvCell(v) {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function toCsv(columns, rows) {
  return `${[columns, ...rows].map((r) => r.map(csvCell).join(',')).join('\r\n')}\r\n`;
}

function show(res) {
  const table = document.getElementById('sql-result');
  table.replaceChildren(
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        res.columns.map((c) => h('th', {}, c)),
      ),
    ),
    h(
      'tbody',
      {},
      res.rows.map((r) =>
        h(
          'tr',
          {},
          r.map((v) => h('td', { class: v === null ? 'muted' : typeof v === 'number' ? 'num' : null }, v ?? 'NULL')),
        ),
      ),
    ),
  );
}

async function run() {
  const status = document.getElementById('sql-status');
  const button = document.getElementById('sql-run');
  const sql = document.getElementById('sql-text').value;
  button.disabled = true;
  status.className = 'muted';
  status.textContent = 'running…';
  try {
    const res = await api('/api/sql', { method: 'POST', body: { sql } });
    last = res;
    show(res);
    const n = `${res.rows.length} row${res.rows.length === 1 ? '' : 's'}`;
    status.textContent = res.truncated
      ? `${n} shown; truncated: the query has more (at most ${res.limit} rows or 4 MB are returned; add a LIMIT or a WHERE, or aggregate) · ${res.ms} ms`
      : `${n} · ${res.ms} ms`;
    document.getElementById('sql-csv').disabled = false;
  } catch (err) {
    status.className = 'error';
    status.textContent = err instanceof ApiError ? err.message : String(err);
  } finally {
    button.disabled = false;
  }
}

function download() {
  if (!last) return;
  const url = URL.createObjectURL(new Blob([toCsv(last.columns, last.rows)], { type: 'text/csv;charset=utf-8' }));
  const stamp = new Date().toISOString().slice(0, 19).replaceAll(':', '-');
  const a = h('a', { href: url, download: `langbiang-query-${stamp}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function wireSqlBox() {
  document.getElementById('sql-run').addEventListener('click', run);
  document.getElementById('sql-csv').addEventListener('click', download);
  // Ctrl+Enter runs the query, as in most SQL tools
  document.getElementById('sql-text').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      run();
    }
  });
}
