import { LangbiangError } from '../core/errors.js';
import type { StoredReading } from '../core/reading.js';

export type ExportFormat = 'csv' | 'jsonl';
export type ExportRow = StoredReading & { gateway?: string };

/** The export columns of the external contract (docs/cli.md), in order; receiver exports put `gateway` first. */
export const EXPORT_COLUMNS = ['seq', 'device', 'point', 'ts', 'value', 'unit', 'quality'] as const;

/** Lines are gathered into chunks of about this size before a write: one write per line is slow. */
const CHUNK_CHARS = 64 * 1024;

/**
 * Writes readings as CSV (header line first) or JSON lines, "\n"-terminated, honouring the
 * stream's backpressure. ts is ISO 8601 UTC with milliseconds; value is a number (a string for
 * string points), empty in CSV and null in JSON when the reading has none. Returns the number of
 * readings written.
 */
export async function writeExport(
  readings: Iterable<ExportRow>,
  format: ExportFormat,
  out: NodeJS.WritableStream,
  /** header: false continues an export written in pages (the CSV header went with the first) */
  opts: { withGateway?: boolean; header?: boolean } = {},
): Promise<number> {
  if (format !== 'csv' && format !== 'jsonl') {
    throw new LangbiangError('USAGE', `unknown export format ${JSON.stringify(format)}; use csv or jsonl`);
  }
  const withGateway = opts.withGateway === true;
  const line =
    format === 'csv' ? (r: ExportRow) => csvLine(r, withGateway) : (r: ExportRow) => jsonLine(r, withGateway);
  let chunk =
    format === 'csv' && opts.header !== false
      ? `${(withGateway ? ['gateway', ...EXPORT_COLUMNS] : EXPORT_COLUMNS).join(',')}\n`
      : '';
  let count = 0;
  for (const r of readings) {
    chunk += line(r);
    count++;
    if (chunk.length >= CHUNK_CHARS) {
      await write(out, chunk);
      chunk = '';
    }
  }
  if (chunk) await write(out, chunk);
  return count;
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

function csvLine(r: ExportRow, withGateway: boolean): string {
  const fields = [
    String(r.seq),
    csvField(r.device),
    csvField(r.point),
    isoTime(r.ts),
    r.value === null || r.value === undefined ? '' : typeof r.value === 'number' ? String(r.value) : csvField(r.value),
    csvField(r.unit ?? ''),
    csvField(r.quality),
  ];
  if (withGateway) fields.unshift(csvField(r.gateway ?? ''));
  return `${fields.join(',')}\n`;
}

/** RFC 4180 quoting: only fields that need it, with quotes doubled. */
function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function jsonLine(r: ExportRow, withGateway: boolean): string {
  // Built key by key so the order is the documented one whatever the input object's order.
  const o: Record<string, unknown> = {};
  if (withGateway) o.gateway = r.gateway ?? null;
  o.seq = r.seq;
  o.device = r.device;
  o.point = r.point;
  o.ts = isoTime(r.ts);
  o.value = r.value ?? null;
  o.unit = r.unit ?? null;
  o.quality = r.quality;
  return `${JSON.stringify(o)}\n`;
}

function write(out: NodeJS.WritableStream, data: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: unknown) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(new LangbiangError('INTERNAL', 'export output closed before all readings were written'));
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      out.off('error', onError);
      out.off('close', onClose);
      out.off('drain', onDrain);
    };
    out.on('error', onError);
    out.on('close', onClose);
    if (out.write(data)) {
      cleanup();
      resolve();
    } else {
      out.on('drain', onDrain);
    }
  });
}
