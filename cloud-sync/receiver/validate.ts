import type { EventsBatch, TelemetryBatch } from '../protocol/types.js';

/**
 * Checks a decoded message against what the store needs and against its topic, so that a write
 * can only fail because the database is down — never because of what a gateway sent (a message
 * that fails here is counted as malformed and acknowledged, never retried forever).
 * Returns the first problem, or undefined.
 */
export function telemetryProblem(b: TelemetryBatch, topicGateway: string): string | undefined {
  const env = envelopeProblem(b, topicGateway);
  if (env) return env;
  if (!isSeq(b.firstSeq) || !isSeq(b.lastSeq) || b.lastSeq < b.firstSeq) {
    return `bad seq range ${b.firstSeq}..${b.lastSeq}`;
  }
  if (!Array.isArray(b.readings)) return 'readings is not a list';
  for (const r of b.readings) {
    if (!isSeq(r.seq) || r.seq < b.firstSeq || r.seq > b.lastSeq) {
      return `reading seq ${r.seq} outside the batch range ${b.firstSeq}..${b.lastSeq}`;
    }
    if (!isName(r.device)) return `reading ${r.seq}: bad device id`;
    if (!isName(r.point)) return `reading ${r.seq}: bad point name`;
    if (typeof r.ts !== 'number' || !Number.isFinite(r.ts)) return `reading ${r.seq}: bad ts`;
    if (!(r.value === null || typeof r.value === 'number' || (typeof r.value === 'string' && isText(r.value)))) {
      return `reading ${r.seq}: bad value`;
    }
    if (!(r.unit === null || (typeof r.unit === 'string' && isText(r.unit)))) return `reading ${r.seq}: bad unit`;
    if (!isName(r.quality)) return `reading ${r.seq}: bad quality`;
  }
  return undefined;
}

export function eventsProblem(b: EventsBatch, topicGateway: string): string | undefined {
  const env = envelopeProblem(b, topicGateway);
  if (env) return env;
  if (!Array.isArray(b.events)) return 'events is not a list';
  for (const e of b.events) {
    if (!Number.isSafeInteger(e.id) || e.id < 0) return `bad event id ${e.id}`;
    if (!isName(e.kind)) return `event ${e.id}: bad kind`;
    if (typeof e.ts !== 'number' || !Number.isFinite(e.ts)) return `event ${e.id}: bad ts`;
    if (typeof e.data !== 'object' || e.data === null || Array.isArray(e.data))
      return `event ${e.id}: data is not an object`;
    // PostgreSQL's jsonb refuses \u0000 in strings
    if (JSON.stringify(e.data).includes('\\u0000')) return `event ${e.id}: data holds a NUL character`;
  }
  return undefined;
}

function envelopeProblem(b: { gateway: string; epoch: string }, topicGateway: string): string | undefined {
  if (typeof b.gateway !== 'string' || b.gateway !== topicGateway) {
    return `envelope gateway ${JSON.stringify(b.gateway)} does not match the topic's ${JSON.stringify(topicGateway)}`;
  }
  if (typeof b.epoch !== 'string' || b.epoch.length === 0 || b.epoch.length > 128 || !isText(b.epoch))
    return 'bad epoch';
  return undefined;
}

function isSeq(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function isName(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && s.length <= 256 && isText(s);
}

/** PostgreSQL text cannot hold NUL. */
function isText(s: string): boolean {
  return !s.includes('\u0000');
}
