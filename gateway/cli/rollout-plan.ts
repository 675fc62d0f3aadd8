import { LangbiangError } from '../core/errors.js';

/**
 * The pure part of `langbiang city update`: the fleet list, the stages, the failure budget and
 * what a gateway's messages say of its update. The command (cmd-city-update.ts) does the I/O.
 */

/** A gateway id as a topic level: no MQTT wildcard, no level separator. */
const GATEWAY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * The fleet file: one gateway id per line (blank lines and `#` comments ignored), or JSON — an
 * array of ids or of `{ "id": … }` objects, or `{ "gateways": [ … ] }` (what `langbiang fleet --json`
 * gives). The order of the file is the order of the roll-out: put the canaries first.
 */
export function parseFleet(text: string, file = 'the fleet file'): string[] {
  const trimmed = text.trim();
  let ids: unknown[];
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(trimmed);
    } catch {
      throw new LangbiangError('USAGE', `${file} looks like JSON but does not parse`);
    }
    const list = Array.isArray(doc) ? doc : (doc as { gateways?: unknown }).gateways;
    if (!Array.isArray(list)) throw new LangbiangError('USAGE', `${file}: expected an array of gateway ids`);
    ids = list.map((g) =>
      g !== null && typeof g === 'object'
        ? ((g as { id?: unknown; gateway?: unknown }).id ?? (g as { gateway?: unknown }).gateway)
        : g,
    );
  } else {
    ids = trimmed
      .split(/\r?\n/)
      .map((l) => l.replace(/#.*$/, '').trim())
      .filter((l) => l !== '');
  }
  const seen = new Set<string>();
  const out: string[] = [];
  ids.forEach((id, i) => {
    if (typeof id !== 'string' || !GATEWAY_ID.test(id))
      throw new LangbiangError(
        'USAGE',
        `${file}: entry ${i + 1} (${JSON.stringify(id)?.slice(0, 40)}) is not a gateway id`,
      );
    if (!seen.has(id)) out.push(id);
    seen.add(id);
  });
  if (out.length === 0) throw new LangbiangError('USAGE', `${file} names no gateway`);
  return out;
}

/** `5%` or `5` → 5 (a share of the fleet in percent, 0 < p ≤ 100). */
export function parsePercent(name: string, raw: string): number {
  const n = Number(raw.trim().replace(/%$/, ''));
  if (!Number.isFinite(n) || n <= 0 || n > 100)
    throw new LangbiangError(
      'USAGE',
      `${name} must be a share of the fleet like 5% (more than 0, at most 100), not ${JSON.stringify(raw)}`,
    );
  return n;
}

/**
 * The stages as cumulative shares: `--stages 5,25,100`, or `--stage 5%` followed by 25% and 100%
 * (the defaults above it). The last stage is always 100%.
 */
export function stageShares(o: { stage?: string; stages?: string }): number[] {
  let shares: number[];
  if (o.stages !== undefined) shares = o.stages.split(',').map((s) => parsePercent('--stages', s));
  else {
    const first = parsePercent('--stage', o.stage ?? '5%');
    shares = [first, ...[25, 100].filter((s) => s > first)];
  }
  for (let i = 1; i < shares.length; i++)
    if (shares[i]! <= shares[i - 1]!) throw new LangbiangError('USAGE', '--stages must grow, e.g. 5,25,100');
  if (shares[shares.length - 1] !== 100) shares.push(100);
  return shares;
}

/** How many gateways each stage reaches in all (at least one more than the stage before). */
export function stageCounts(fleet: number, shares: number[]): number[] {
  const counts: number[] = [];
  let prev = 0;
  for (const share of shares) {
    const n = Math.min(fleet, Math.max(prev + 1, Math.ceil((fleet * share) / 100)));
    if (n > prev) counts.push(n);
    prev = n;
  }
  return counts;
}

/** `10%` (of the gateways ordered so far) or `3` (gateways). */
export type FailureBudget = { percent: number } | { count: number };

export function parseFailureBudget(raw: string): FailureBudget {
  const s = raw.trim();
  if (s.endsWith('%')) {
    const n = Number(s.slice(0, -1));
    if (Number.isFinite(n) && n >= 0 && n <= 100) return { percent: n };
  } else if (/^\d+$/.test(s)) return { count: Number(s) };
  throw new LangbiangError(
    'USAGE',
    `--max-failures must be a share like 10% or a number of gateways, not ${JSON.stringify(raw)}`,
  );
}

/** Failures allowed among `ordered` gateways; the roll-out stops when there are more. */
export function failuresAllowed(budget: FailureBudget, ordered: number): number {
  return 'count' in budget ? budget.count : Math.floor((ordered * budget.percent) / 100);
}

export type GatewayOutcome = 'pending' | 'confirmed' | 'failed' | 'timed_out';

/** What one message from a gateway says of its update to `version` (null: nothing about it). */
export type Signal = { outcome: 'confirmed' } | { outcome: 'failed'; reason: string };

const FAILED_STATES = new Set(['failed', 'refused', 'rolled_back', 'rolled-back', 'rollback']);

/**
 * A gateway's retained status: `online`, the new version running (`version`) and no confirmation
 * pending for it (`update.pending`) is the one authoritative "done"; a last outcome that names the
 * version as rolled back or refused is a failure.
 */
export function statusSignal(status: unknown, version: string): Signal | null {
  if (status === null || typeof status !== 'object') return null;
  const s = status as {
    state?: unknown;
    version?: unknown;
    update?: { pending?: { version?: unknown }; last?: Record<string, unknown> };
  };
  const u = s.update && typeof s.update === 'object' ? s.update : undefined;
  if (s.state === 'online' && s.version === version && u?.pending?.version !== version) return { outcome: 'confirmed' };
  const last = u?.last;
  if (last && last.version === version && typeof last.outcome === 'string' && FAILED_STATES.has(last.outcome))
    return { outcome: 'failed', reason: `${last.outcome}${typeof last.reason === 'string' ? `: ${last.reason}` : ''}` };
  return null;
}

/**
 * One event of a gateway's `events` batch: an `update` event that names the version as failed,
 * refused or rolled back, or a refusal of an order before it was read (a bad signature: the tool's
 * own fault, or a key not pinned there) from after the order was sent.
 */
export function eventSignal(
  event: { kind?: unknown; ts?: unknown; data?: unknown },
  version: string,
  orderedAt: number,
): Signal | null {
  const d = (event.data ?? {}) as Record<string, unknown>;
  const ts = typeof event.ts === 'number' ? event.ts : 0;
  if (event.kind === 'refused' && d.topic === 'update' && ts >= orderedAt - 60_000)
    return { outcome: 'failed', reason: `order refused (${String(d.reason)}): ${String(d.message ?? '')}` };
  if (event.kind !== 'update') return null;
  const state = typeof d.outcome === 'string' ? d.outcome : typeof d.state === 'string' ? d.state : '';
  if (state === 'confirmed' && d.version === version) return { outcome: 'confirmed' };
  if (!FAILED_STATES.has(state)) return null;
  // a refusal of an order that could not be read names no version: it is ours if it is recent
  if (d.version === version || (d.version === undefined && ts >= orderedAt - 60_000))
    return { outcome: 'failed', reason: `${state}${typeof d.reason === 'string' ? `: ${d.reason}` : ''}` };
  return null;
}
