import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { describeError, LangbiangError } from '../core/errors.js';
import { signMessage } from '../core/signed.js';
import { writeFileAtomic } from '../provision/files.js';
import {
  MAX_UPDATE_ORDER_LIFETIME_MS,
  parseUpdateOrder,
  type UpdateOrder,
  updateOrderMessage,
} from '../update/order.js';
import { type BrokerCliOptions, duration, readSigningKey, withBroker } from './cmd-city.js';
import {
  eventSignal,
  type FailureBudget,
  failuresAllowed,
  type GatewayOutcome,
  parseFailureBudget,
  parseFleet,
  type Signal,
  stageCounts,
  stageShares,
  statusSignal,
} from './rollout-plan.js';

/**
 * `langbiang city update`: a staged roll-out of one release to a fleet. Each stage sends a signed
 * order (kind `update`, the city's control key) to more of the fleet — 5%, then 25%, then all by
 * default — and waits for every gateway of the stage to answer: its retained `status` naming the
 * new version as running and confirmed is success; an `update` event saying it failed, was refused
 * or rolled back, or no confirmation within --confirm-timeout, is a failure. When failures pass
 * --max-failures (of the gateways ordered so far) the roll-out stops: nothing more is sent, a
 * summary is printed, exit 1. Everything is kept in a state file, so running the same command
 * again continues where it stopped (gateways already ordered are not ordered again).
 */
export interface CityUpdateOptions extends BrokerCliOptions {
  gateways: string;
  key: string;
  keyName?: string;
  url: string;
  bundle: string;
  release: string;
  stage?: string;
  stages?: string;
  maxFailures?: string;
  confirmTimeout?: string;
  expires?: string;
  state?: string;
  /** print a line per gateway outcome (default true) */
  quiet?: boolean;
}

interface GatewayEntry {
  stage: number;
  orderedAt: number | null;
  outcome: GatewayOutcome;
  reason?: string;
  at?: string;
}

export interface RolloutState {
  v: 1;
  version: string;
  sha256: string;
  size: number;
  url: string;
  fleet: string[];
  counts: number[];
  /** the stage being worked on (0-based) */
  stage: number;
  gateways: Record<string, GatewayEntry>;
  stopped?: { at: string; reason: string } | null;
  finished?: string | null;
}

export interface RolloutSummary {
  version: string;
  fleet: number;
  ordered: number;
  confirmed: number;
  failed: number;
  timedOut: number;
  pending: number;
  stoppedAt: number | null;
  complete: boolean;
}

export async function runCityUpdate(o: CityUpdateOptions): Promise<RolloutSummary> {
  const fleet = parseFleet(readText(o.gateways, 'fleet file'), o.gateways);
  const shares = stageShares(o);
  const counts = stageCounts(fleet.length, shares);
  const budget: FailureBudget = parseFailureBudget(o.maxFailures ?? '10%');
  const confirmTimeoutMs = duration('--confirm-timeout', o.confirmTimeout ?? '30m');
  const lifetimeMs = duration('--expires', o.expires ?? '7d');
  if (lifetimeMs > MAX_UPDATE_ORDER_LIFETIME_MS)
    throw new LangbiangError('USAGE', '--expires may be at most 14d (a gateway refuses a longer-lived order)');
  const { key, keyName } = readSigningKey({ key: o.key, keyName: o.keyName, gateway: '' });
  const order = await orderFor(o);
  const stateFile = o.state ?? `rollout-${order.version}.json`;
  const state = loadState(stateFile, order, fleet, counts);
  const say = (line: string) => {
    if (!o.quiet) process.stdout.write(`${line}\n`);
  };
  if (o.broker === undefined)
    throw new LangbiangError('USAGE', '--broker is required: the roll-out talks to the fleet');

  const summary = await withBroker(o, async (client) => {
    const wanted = new Set(fleet);
    const statusOf = new Map<string, unknown>();
    let wake: (() => void) | null = null;
    const changed = () => {
      wake?.();
    };
    const settle = (id: string, signal: Signal) => {
      const g = state.gateways[id];
      if (g?.outcome !== 'pending' || g.orderedAt === null) return;
      g.outcome = signal.outcome;
      g.at = new Date().toISOString();
      if (signal.outcome === 'failed') g.reason = signal.reason;
      say(`${id}: ${signal.outcome === 'confirmed' ? `running ${order.version}, confirmed` : `FAILED (${g.reason})`}`);
      save(stateFile, state);
      changed();
    };
    client.on('message', (topic, payload) => {
      const m = /^langbiang\/v1\/([^/]+)\/(status|events)$/.exec(topic);
      if (!m || !wanted.has(m[1]!)) return;
      const id = m[1]!;
      let doc: unknown;
      try {
        doc = JSON.parse(payload.toString('utf8'));
      } catch {
        return; // not ours to judge: a receiver reports malformed payloads
      }
      if (m[2] === 'status') {
        statusOf.set(id, doc);
        const s = statusSignal(doc, order.version);
        if (s) settle(id, s);
        return;
      }
      const events = (doc as { events?: unknown }).events;
      if (!Array.isArray(events)) return;
      const g = state.gateways[id];
      for (const e of events) {
        const s = eventSignal(e as Record<string, unknown>, order.version, g?.orderedAt ?? Date.now());
        if (s) settle(id, s);
      }
    });
    await client.subscribeAsync(['langbiang/v1/+/status', 'langbiang/v1/+/events'], { qos: 1 });
    // the retained statuses arrive now: a gateway already on the release needs no order
    await sleep(500);

    const sendTo = async (id: string, stage: number) => {
      const now = Date.now();
      const already = statusSignal(statusOf.get(id), order.version);
      if (already?.outcome === 'confirmed') {
        state.gateways[id] = {
          stage,
          orderedAt: now,
          outcome: 'confirmed',
          at: new Date(now).toISOString(),
          reason: 'already running it',
        };
        say(`${id}: already running ${order.version}`);
        return;
      }
      const payload = signMessage({
        kind: 'update',
        gateway: id,
        message: updateOrderMessage(order),
        issuedAt: now,
        expiresAt: now + lifetimeMs,
        keyName,
        privateKey: key,
      });
      state.gateways[id] = { stage, orderedAt: now, outcome: 'pending' };
      // retained: a gateway offline now gets it when it comes back (within the order's expiry)
      await client.publishAsync(`langbiang/v1/${id}/update`, payload, { qos: 1, retain: true });
    };

    const tally = () => {
      let ordered = 0;
      let confirmed = 0;
      let failed = 0;
      let timedOut = 0;
      let pending = 0;
      for (const g of Object.values(state.gateways)) {
        if (g.orderedAt === null) continue;
        ordered++;
        if (g.outcome === 'confirmed') confirmed++;
        else if (g.outcome === 'failed') failed++;
        else if (g.outcome === 'timed_out') timedOut++;
        else pending++;
      }
      return { ordered, confirmed, failed, timedOut, pending };
    };
    const overBudget = () => {
      const t = tally();
      return t.failed + t.timedOut > failuresAllowed(budget, t.ordered);
    };

    for (; state.stage < state.counts.length && !state.stopped; ) {
      const stage = state.stage;
      const upTo = state.counts[stage]!;
      if (overBudget()) break;
      const members = state.fleet.slice(0, upTo);
      const fresh = members.filter((id) => !state.gateways[id]);
      if (fresh.length > 0)
        say(
          `stage ${stage + 1}/${state.counts.length}: ordering ${fresh.length} gateway(s) (${upTo} of ${state.fleet.length} in all)`,
        );
      for (const id of fresh) await sendTo(id, stage);
      save(stateFile, state);
      // wait for every gateway of the stage to confirm, fail or time out
      let warned = false;
      for (;;) {
        const now = Date.now();
        for (const id of members) {
          const g = state.gateways[id]!;
          if (g.outcome === 'pending' && g.orderedAt !== null && now - g.orderedAt > confirmTimeoutMs) {
            g.outcome = 'timed_out';
            g.at = new Date(now).toISOString();
            g.reason = `no confirmation within ${Math.round(confirmTimeoutMs / 1000)} s`;
            say(`${id}: TIMED OUT (${g.reason})`);
            save(stateFile, state);
          }
        }
        // over the budget nothing more is sent, but the gateways already ordered are heard out
        if (members.every((id) => state.gateways[id]!.outcome !== 'pending')) break;
        if (overBudget() && !warned) {
          warned = true;
          const waiting = members.filter((id) => state.gateways[id]!.outcome === 'pending').length;
          say(
            `failures over the budget: nothing more will be sent; waiting for the ${waiting} gateway(s) already ordered`,
          );
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
      if (overBudget()) break;
      state.stage++;
      save(stateFile, state);
    }

    const t = tally();
    const stopped = overBudget();
    if (stopped && !state.stopped) {
      state.stopped = {
        at: new Date().toISOString(),
        reason: `${t.failed + t.timedOut} failure(s) among ${t.ordered} gateway(s) ordered, more than the ${failuresAllowed(budget, t.ordered)} allowed`,
      };
    }
    if (!stopped && state.stage >= state.counts.length) state.finished ??= new Date().toISOString();
    save(stateFile, state);
    return {
      version: order.version,
      fleet: state.fleet.length,
      ...t,
      stoppedAt: stopped ? Math.min(state.stage, state.counts.length - 1) + 1 : null,
      complete: !stopped && state.stage >= state.counts.length,
    } satisfies RolloutSummary;
  });

  const line = summary.complete
    ? `roll-out of ${summary.version} complete: ${summary.confirmed} of ${summary.fleet} gateways confirmed, ${summary.failed + summary.timedOut} failed`
    : `roll-out of ${summary.version} STOPPED at stage ${summary.stoppedAt}: ${summary.failed} failed, ${summary.timedOut} timed out, ${summary.confirmed} confirmed, ${summary.pending} still pending, of ${summary.ordered} ordered (fleet ${summary.fleet}); ${state.stopped?.reason ?? ''}; nothing more was sent (state in ${stateFile})`;
  process.stdout.write(`${line}\n`);
  if (!summary.complete) process.exitCode = 1;
  return summary;
}

/** The order: the bundle's size and sha256 computed here, the URL and version as given. */
async function orderFor(o: CityUpdateOptions): Promise<UpdateOrder> {
  let size: number;
  try {
    size = statSync(o.bundle).size;
  } catch (err) {
    throw new LangbiangError('USAGE', `cannot read the bundle ${o.bundle}: ${describeError(err)}`);
  }
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(o.bundle)) hash.update(chunk as Buffer);
  const parsed = parseUpdateOrder({ v: 1, version: o.release, url: o.url, size, sha256: hash.digest('hex') });
  if (!parsed.ok) throw new LangbiangError('USAGE', parsed.problem.replace(/^update order: /, ''));
  if (!o.url.startsWith('https://'))
    process.stderr.write(
      'warning: --url is not https://; gateways fetch http:// only from themselves unless allowed in their config\n',
    );
  return parsed.order;
}

/** The state of an earlier run of the same roll-out, or a new one; another release's state is refused. */
function loadState(file: string, order: UpdateOrder, fleet: string[], counts: number[]): RolloutState {
  let text: string | null = null;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    text = null;
  }
  if (text === null) return { v: 1, ...order, fleet, counts, stage: 0, gateways: {}, stopped: null, finished: null };
  let s: RolloutState;
  try {
    s = JSON.parse(text) as RolloutState;
  } catch {
    throw new LangbiangError('USAGE', `${file} is not a roll-out state file (not JSON); move it away to start afresh`);
  }
  if (s.v !== 1 || s.sha256 !== order.sha256 || s.version !== order.version)
    throw new LangbiangError(
      'USAGE',
      `${file} is the roll-out of another bundle (${String(s.version)}); use --state for a new file or move it away`,
    );
  // the fleet and stages may be edited between runs; those already ordered keep their outcome
  s.fleet = [...s.fleet.filter((id) => fleet.includes(id)), ...fleet.filter((id) => !s.fleet.includes(id))];
  s.counts = counts;
  s.url = order.url;
  // a new run re-judges the failures with its own --max-failures
  s.stopped = null;
  return s;
}

function save(file: string, state: RolloutState): void {
  writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`, 0o644);
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new LangbiangError('USAGE', `cannot read the ${what} ${file}: ${describeError(err)}`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
