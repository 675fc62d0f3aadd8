import { LangbiangError } from '../core/errors.js';
import type { ExportFormat } from './export.js';

/** One event as exported: gaps, command audit, alarms, config changes (the `events` topic's content). */
export interface EventExportRow {
  /** receiver exports only */
  gateway?: string;
  epoch?: string;
  id: number;
  kind: string;
  /** wall ms */
  ts: number;
  data: Record<string, unknown>;
}

/** Event export columns; a receiver export puts `gateway,epoch` first. */
export const EVENT_COLUMNS = ['id', 'kind', 'ts', 'data'] as const;

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Events as CSV (`data` as one JSON text field) or JSON lines (`data` as an object), ts as ISO 8601
 * UTC with milliseconds. Small enough to build at once: a gateway keeps thousands of events, not
 * millions.
 */
export function formatEvents(rows: readonly EventExportRow[], format: ExportFormat, withGateway: boolean): string {
  if (format !== 'csv' && format !== 'jsonl')
    throw new LangbiangError('USAGE', `unknown export format ${JSON.stringify(format)}; use csv or jsonl`);
  const lines: string[] = [];
  if (format === 'csv') lines.push((withGateway ? ['gateway', 'epoch', ...EVENT_COLUMNS] : EVENT_COLUMNS).join(','));
  for (const r of rows) {
    const ts = new Date(r.ts).toISOString();
    if (format === 'csv') {
      const f = [String(r.id), csvField(r.kind), ts, csvField(JSON.stringify(r.data))];
      if (withGateway) f.unshift(csvField(r.gateway ?? ''), csvField(r.epoch ?? ''));
      lines.push(f.join(','));
    } else {
      const o: Record<string, unknown> = {};
      if (withGateway) {
        o.gateway = r.gateway ?? null;
        o.epoch = r.epoch ?? null;
      }
      Object.assign(o, { id: r.id, kind: r.kind, ts, data: r.data });
      lines.push(JSON.stringify(o));
    }
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
