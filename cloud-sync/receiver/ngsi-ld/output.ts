import { describeError } from '../../../gateway/core/errors.js';
import { LogLimiter } from '../../../gateway/core/log-limiter.js';
import type { ReceiverLogger } from '../receiver.js';
import type { NgsiLdClient } from './client.js';
import { deviceEntities, type EntityOptions, type NgsiLdEntity, type NgsiLdSites } from './entities.js';
import { type ArrivalKey, type NgsiLdSource, START } from './source.js';

export interface NgsiLdOutputOptions {
  source: NgsiLdSource;
  client: NgsiLdClient;
  sites: NgsiLdSites;
  /** names this output's cursor (two outputs to two brokers keep their own) */
  name: string;
  entity?: EntityOptions;
  logger?: ReceiverLogger;
  /** how often to look for new readings when idle, ms (default 1000) */
  pollMs?: number;
  /** read only readings received at least this long ago, ms (default 5000): a commit in progress is never skipped */
  lagMs?: number;
  /** readings scanned per round (default 20000); a backlog takes several rounds, each with its cursor saved */
  scanRows?: number;
  /** entities per upsert request (default 100) */
  batchEntities?: number;
  /** retry backoff bounds, ms (default 1000 .. 60000), with jitter */
  retryMinMs?: number;
  retryMaxMs?: number;
}

export interface NgsiLdOutputStats {
  /** entities the broker took */
  upserted: number;
  /** entities the broker refused for their content (logged; not retried) */
  rejected: number;
  /** rounds that failed (broker or database) and were retried */
  failures: number;
  /** wall ms of the last round that reached the broker */
  lastUpsertAt?: number;
  /** the arrival time the output has caught up to (wall ms) */
  caughtUpTo?: number;
}

const silent: ReceiverLogger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Feeds an NGSI-LD context broker from the receiver's database: the current state of every
 * device whose readings arrived since the cursor. The receiver's exactly-once tables stay the
 * truth; this output keeps only a cursor (in the same database) and moves it after the broker took
 * the batch, so a broker that was down is caught up when it returns. It sends each device's newest
 * good value per point, never the history in between: an upsert of current state needs nothing else.
 */
export class NgsiLdOutput {
  private readonly log: ReceiverLogger;
  private readonly s: NgsiLdOutputStats = { upserted: 0, rejected: 0, failures: 0 };
  private stopping = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** cancels a request in flight when stopping (its batch is sent again by the next start) */
  private readonly abort = new AbortController();
  private consecutiveFailures = 0;
  /** a profile mapping the broker refuses would otherwise log every entity of every round */
  private readonly rejectedLog = new LogLimiter(10, 60_000);

  constructor(private readonly o: NgsiLdOutputOptions) {
    this.log = o.logger ?? silent;
  }

  stats(): NgsiLdOutputStats {
    return { ...this.s };
  }

  start(): void {
    this.loop ??= this.run();
  }

  /**
   * Stops: a request in flight is cancelled (the cursor stays where the broker last took data, so
   * that batch goes again at the next start), then the source is closed.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.wake?.();
    await this.loop;
    await this.o.source.close();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let more = false;
      try {
        more = await this.round();
        if (this.consecutiveFailures > 0)
          this.log.info({ after: this.consecutiveFailures }, 'NGSI-LD upsert works again; catching up');
        this.consecutiveFailures = 0;
      } catch (err) {
        if (this.stopping) break;
        this.s.failures++;
        this.consecutiveFailures++;
        const wait = this.backoff();
        this.log.warn(
          { err: describeError(err), failures: this.consecutiveFailures, retryInMs: wait },
          'NGSI-LD upsert failed; will retry from the same cursor',
        );
        await this.sleep(wait);
        continue;
      }
      if (!more) await this.sleep(this.o.pollMs ?? 1000);
    }
  }

  /** One round: readings since the cursor → entities → broker → cursor. True when more are waiting. */
  private async round(): Promise<boolean> {
    const src = this.o.source;
    const after = (await src.cursor(this.o.name)) ?? START;
    const limit = this.o.scanRows ?? 20_000;
    const arrivals = await src.arrivals(after, Date.now() - (this.o.lagMs ?? 5000), limit);
    if (arrivals.length === 0) return false;

    // the devices (and their points) that changed, in arrival order
    const touched = new Map<string, { gateway: string; device: string; points: Set<string> }>();
    for (const a of arrivals) {
      const k = `${a.gateway}\u0000${a.device}`;
      let t = touched.get(k);
      if (!t) {
        t = { gateway: a.gateway, device: a.device, points: new Set() };
        touched.set(k, t);
      }
      t.points.add(a.point);
    }
    const entities: NgsiLdEntity[] = [];
    for (const t of touched.values()) {
      const mapping = this.o.sites.get(t.gateway)?.devices.get(t.device)?.mapping;
      // a model entity is rebuilt whole (its required attributes, its newest time); a measurement per point
      const points = mapping && mapping.type !== 'DeviceMeasurement' ? Object.keys(mapping.attributes) : [...t.points];
      const values = await src.latest(t.gateway, t.device, points);
      entities.push(...deviceEntities(this.o.sites, t, values, this.o.entity));
    }
    const size = this.o.batchEntities ?? 100;
    for (let i = 0; i < entities.length; i += size) {
      const batch = entities.slice(i, i + size);
      const rejected = await this.o.client.upsert(batch, this.abort.signal);
      for (const r of rejected) {
        const ok = this.rejectedLog.take();
        if (ok)
          this.log.error(
            { entity: r.id, reason: r.reason, notLogged: ok.suppressed || undefined },
            'context broker refused an entity',
          );
      }
      this.s.rejected += rejected.length;
      this.s.upserted += batch.length - rejected.length;
      this.s.lastUpsertAt = Date.now();
    }
    const last = arrivals[arrivals.length - 1]!;
    const key: ArrivalKey = { receivedAt: last.receivedAt, gateway: last.gateway, epoch: last.epoch, seq: last.seq };
    await src.saveCursor(this.o.name, key);
    this.s.caughtUpTo = key.receivedAt;
    this.log.debug({ readings: arrivals.length, entities: entities.length }, 'NGSI-LD upsert done');
    return arrivals.length === limit;
  }

  private backoff(): number {
    const min = this.o.retryMinMs ?? 1000;
    const max = this.o.retryMaxMs ?? 60_000;
    const cap = Math.min(max, min * 2 ** Math.min(this.consecutiveFailures - 1, 16));
    return Math.round(min + Math.random() * (cap - min));
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }
}
