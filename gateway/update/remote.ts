import { createHash, type KeyObject } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describeError, LangbiangError } from '../core/errors.js';
import type { EventRecorder } from '../core/outbox.js';
import { verifySigned } from '../core/signed.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../provision/files.js';
import { RefusalBudget } from '../refusals.js';
import { type DownloadOptions, downloadResumable } from './download.js';
import type { UpdateInstaller } from './installer.js';
import {
  MAX_UPDATE_ORDER_BYTES,
  MAX_UPDATE_ORDER_LIFETIME_MS,
  parseUpdateOrder,
  redirectProblem,
  type UpdateOrder,
  urlProblem,
} from './order.js';
import { compareVersions } from './version.js';

/**
 * The ways in, past the transport: an order from the city (signed, over MQTT), a bundle uploaded
 * on the console, a bundle on a USB stick. One update at a time, whatever its source; each step is
 * an `update` event for the city (docs/protocol.md, "Events"): `downloading`, `progress`,
 * `downloaded`, `verified`, `installed`, `failed` (with `reason`), `refused` (with `reason`).
 *
 * State under `<dataDir>/update/`:
 *   remote.json            the order being worked on (so a restart resumes its download) and the
 *                          last order seen (a retained order is handled once, an older one refused)
 *   downloads/<sha>.part   the bytes so far
 */
export const UPDATE_DIR = 'update';
export type UpdateSource = 'city' | 'console' | 'usb';
/** the `outcome` of an `update` event from a way in (the installer adds installed, confirmed, rolled-back) */
export type UpdateState = 'downloading' | 'progress' | 'downloaded' | 'verified' | 'installed' | 'failed' | 'refused';

interface ActiveOrder {
  order: UpdateOrder;
  /** the control key that signed it (the audit's actor) */
  key: string;
  acceptedAt: string;
}

interface RemoteState {
  /** issue time of the newest order taken: an order issued before it is a replay */
  lastIssuedAt: number;
  /** sha256 of the newest order's signed bytes: the same bytes again (retained) are ignored */
  lastDigest: string | null;
  active: ActiveOrder | null;
}

export interface RemoteUpdaterOptions {
  gatewayId: string;
  dataDir: string;
  /** the city's control keys pinned on this gateway */
  keys: () => ReadonlyMap<string, KeyObject>;
  installer: () => Promise<UpdateInstaller>;
  events: EventRecorder;
  log: Logger;
  /** after `installed`: stop gracefully and exit with the installer's restart code */
  onInstalled: (r: { version: string; previous: string | null; exitCode: number }) => void;
  now?: () => number;
  /** fetch http:// URLs from other machines too (sync.remoteUpdate.allowHttp) */
  allowHttp?: boolean;
  /** bytes/s at most (sync.remoteUpdate.maxBandwidth) */
  maxBytesPerSec?: number;
  /** bytes the store may still grow by before its cap: a download must leave them free */
  storeHeadroom?: () => number;
  /** free bytes on the data partition (statfs by default) */
  freeBytes?: () => number;
  /** retry pacing and stall limit of the download (tests shorten them) */
  download?: Pick<DownloadOptions, 'retryMinMs' | 'retryMaxMs' | 'maxStalledAttempts' | 'idleTimeoutMs'>;
}

/** progress events: at each tenth of the file, and no more often than this */
const PROGRESS_MIN_INTERVAL_MS = 10_000;
/** a bundle is unpacked beside the running release: count its size again for that */
const UNPACK_FACTOR = 2;

export class RemoteUpdater {
  private readonly dir: string;
  private readonly downloads: string;
  private readonly untrusted: RefusalBudget;
  private readonly now: () => number;
  /** what runs now: a download (city) or an install (any source); one at a time */
  private busy: { source: UpdateSource; version: string | null; abort?: AbortController } | null = null;
  private stopped = false;

  constructor(private readonly o: RemoteUpdaterOptions) {
    this.dir = join(o.dataDir, UPDATE_DIR);
    this.downloads = join(this.dir, 'downloads');
    this.now = o.now ?? Date.now;
    this.untrusted = new RefusalBudget(this.now);
  }

  /** what the console shows: the update running now, if any */
  status(): { busy: boolean; source: UpdateSource | null; version: string | null } {
    return { busy: this.busy !== null, source: this.busy?.source ?? null, version: this.busy?.version ?? null };
  }

  /** At start: an order whose download was cut by a restart goes on from its `.part` file. */
  resumeAtStart(): void {
    const state = this.read();
    this.removeStaleParts(state.active?.order.sha256 ?? null);
    if (state.active) {
      this.o.log.info(
        { version: state.active.order.version },
        'update order from before the restart: resuming its download',
      );
      this.start(state.active);
    }
  }

  /** Stops a download in progress (its `.part` file stays for the next start). */
  stop(): void {
    this.stopped = true;
    this.busy?.abort?.abort();
  }

  /** A message on `langbiang/v1/{id}/update`. Never throws: every refusal is an event. */
  handleMessage(payload: Buffer): void {
    // an empty message is the city clearing a retained order on the broker: nothing to do
    if (payload.length === 0) return;
    try {
      this.dispatch(payload);
    } catch (err) {
      this.o.log.error({ err: describeError(err) }, 'update order handling failed');
    }
  }

  private dispatch(payload: Buffer): undefined {
    const verified = verifySigned(payload, {
      kind: 'update',
      gateway: this.o.gatewayId,
      keys: this.o.keys(),
      now: this.now(),
      maxLifetimeMs: MAX_UPDATE_ORDER_LIFETIME_MS,
      maxBytes: MAX_UPDATE_ORDER_BYTES,
    });
    if (!verified.ok) {
      this.o.log.warn({ reason: verified.reason, problem: verified.message }, 'update order refused: not trusted');
      const data = this.untrusted.admit({ topic: 'update', reason: verified.reason, message: verified.message });
      if (data) this.o.events.recordEvent('refused', data);
      return;
    }
    const digest = createHash('sha256').update(verified.bodyBytes).digest('hex');
    const state = this.read();
    if (digest === state.lastDigest) {
      // the retained order again (a reconnect): handled once already
      this.o.log.debug({}, 'update order already handled; ignored');
      return;
    }
    const refuse = (reason: string, version?: string): undefined => {
      this.o.log.warn({ version, reason }, `update order refused: ${reason}`);
      this.record('refused', { source: 'city', key: verified.key, ...(version ? { version } : {}), reason });
    };
    const parsed = parseUpdateOrder(verified.body.message);
    if (!parsed.ok) return refuse(parsed.problem);
    const order = parsed.order;
    if (verified.body.issuedAt < state.lastIssuedAt)
      return refuse('replayed: an order issued after this one was already taken', order.version);
    // from here the order is the newest seen: a repeat of its bytes is ignored
    this.write({ ...state, lastIssuedAt: verified.body.issuedAt, lastDigest: digest });
    const urlBad = urlProblem(order.url, this.o.allowHttp ?? false);
    if (urlBad) return refuse(urlBad, order.version);
    const active = this.busy;
    if (active?.source === 'city' && active.version !== null) {
      const cmp = compareVersions(order.version, active.version);
      const current = this.read().active;
      if (cmp === 0 && current?.order.sha256 === order.sha256) {
        this.o.log.info({ version: order.version }, 'update order repeated while downloading it; nothing to do');
        return;
      }
      if (cmp <= 0) return refuse(`an update to ${active.version} is in progress`, order.version);
      this.o.log.info({ from: active.version, to: order.version }, 'a newer update order replaces the download');
      active.abort?.abort();
      if (current) rmSync(this.partFile(current.order.sha256), { force: true });
    } else if (active) {
      return refuse(`an update from the ${active.source} is being installed`, order.version);
    }
    // taken now, before the installer loads: a second order meanwhile sees this one
    const abort = new AbortController();
    const claim = { source: 'city' as const, version: order.version, abort };
    this.busy = claim;
    const release = () => {
      if (this.busy === claim) this.busy = null;
    };
    this.o
      .installer()
      .then((installer) => {
        if (abort.signal.aborted)
          return this.stopped ? undefined : refuse('a newer order came before this one started', order.version);
        // not a release install (a development checkout): the installer's own checks decide
        const running = installer.runningVersion();
        if (running !== null && compareVersions(order.version, running) <= 0) {
          release();
          return refuse(
            `${order.version} is not newer than the running ${running}; a downgrade is never ordered over MQTT`,
            order.version,
          );
        }
        const space = this.spaceProblem(order);
        if (space) {
          release();
          return refuse(space, order.version);
        }
        const next: ActiveOrder = { order, key: verified.key, acceptedAt: new Date(this.now()).toISOString() };
        this.write({ ...this.read(), active: next });
        this.start(next, abort);
      })
      .catch((err) => {
        release();
        refuse(`the installer is not available: ${describeError(err)}`, order.version);
      });
  }

  /** Free space for the rest of the download and the unpacked release, leaving the store its cap. */
  private spaceProblem(order: UpdateOrder): string | null {
    let free: number;
    try {
      free = this.o.freeBytes ? this.o.freeBytes() : freeBytesAt(this.o.dataDir);
    } catch {
      return null; // cannot tell: the download's own write error will say it
    }
    const have = fileSize(this.partFile(order.sha256));
    const headroom = Math.max(0, this.o.storeHeadroom?.() ?? 0);
    const need = order.size - have + order.size * UNPACK_FACTOR + headroom;
    if (free >= need) return null;
    return `not enough space on the data partition: ${mib(free)} free, ${mib(need)} needed (the bundle, its unpacked copy and the ${mib(headroom)} the store may still grow by)`;
  }

  private start(active: ActiveOrder, abort = new AbortController()): void {
    if (this.stopped) return;
    this.busy = { source: 'city', version: active.order.version, abort };
    this.run(active, abort.signal)
      .catch((err) => {
        if (abort.signal.aborted) return; // replaced by a newer order, or the gateway is stopping
        const reason = describeError(err);
        this.o.log.error({ version: active.order.version, reason }, `update failed: ${reason}`);
        this.failed('city', { version: active.order.version }, err);
        const state = this.read();
        if (state.active?.order.sha256 === active.order.sha256) this.write({ ...state, active: null });
      })
      .finally(() => {
        if (this.busy?.abort === abort) this.busy = null;
      });
  }

  private async run(active: ActiveOrder, signal: AbortSignal): Promise<void> {
    const { order } = active;
    // installed already (the process stopped between the switch and forgetting the order)
    const running = (await this.o.installer()).runningVersion();
    if (running !== null && compareVersions(order.version, running) <= 0) {
      this.o.log.info({ version: order.version, running }, 'update order already done; forgotten');
      rmSync(this.partFile(order.sha256), { force: true });
      const state = this.read();
      if (state.active?.order.sha256 === order.sha256) this.write({ ...state, active: null });
      return;
    }
    const part = this.partFile(order.sha256);
    const have = fileSize(part);
    this.record('downloading', { source: 'city', key: active.key, version: order.version, size: order.size, have });
    this.o.log.info({ version: order.version, url: order.url, size: order.size, have }, 'downloading update');
    let lastTenth = Math.floor((have / order.size) * 10);
    let lastAt = this.now();
    try {
      await downloadResumable({
        url: order.url,
        partFile: part,
        size: order.size,
        sha256: order.sha256,
        maxBytesPerSec: this.o.maxBytesPerSec,
        signal,
        allowUrl: (u) => redirectProblem(order.url, u, this.o.allowHttp ?? false),
        ...this.o.download,
        onProgress: (bytes, size) => {
          const tenth = Math.floor((bytes / size) * 10);
          if (tenth <= lastTenth || tenth >= 10 || this.now() - lastAt < PROGRESS_MIN_INTERVAL_MS) return;
          lastTenth = tenth;
          lastAt = this.now();
          this.record('progress', { source: 'city', version: order.version, have: bytes, size });
        },
        onRetry: (attempt, waitMs, problem) =>
          this.o.log.warn(
            { version: order.version, attempt, waitMs, problem },
            'update download interrupted; resuming',
          ),
      });
    } catch (err) {
      // a hash mismatch already emptied the file; a network failure keeps it for a later order
      if (!signal.aborted && fileSize(part) === 0) rmSync(part, { force: true });
      throw err;
    }
    const bundle = join(this.downloads, `${order.sha256}.lbr`);
    renameSync(part, bundle);
    this.record('downloaded', { source: 'city', version: order.version, size: order.size });
    try {
      await this.install(bundle, 'city', order.version, active.key);
    } finally {
      rmSync(bundle, { force: true });
      const state = this.read();
      if (state.active?.order.sha256 === order.sha256) this.write({ ...state, active: null });
    }
  }

  /**
   * A bundle already on this machine (the console's upload, a USB stick): verify with the release
   * key, install, and ask for the restart. Throws (after the `failed` event) when it does not install.
   */
  async installLocal(
    bundle: string,
    source: 'console' | 'usb',
    actor: string,
  ): Promise<{ version: string; previous: string | null }> {
    if (this.busy)
      throw new LangbiangError(
        'BUSY',
        `an update${this.busy.version ? ` to ${this.busy.version}` : ''} from the ${this.busy.source} is in progress; try again after it`,
      );
    this.busy = { source, version: null };
    try {
      return await this.install(bundle, source, null, actor);
    } catch (err) {
      const reason = describeError(err);
      this.o.log.error({ source, reason }, `update failed: ${reason}`);
      this.failed(source, { actor }, err);
      throw err instanceof InstallerRefused ? err.cause : err;
    } finally {
      this.busy = null;
    }
  }

  private async install(
    bundle: string,
    source: UpdateSource,
    ordered: string | null,
    actor: string,
  ): Promise<{ version: string; previous: string | null }> {
    const installer = await this.o.installer();
    const manifest = await installer.verify(bundle);
    if (ordered !== null && manifest.version !== ordered)
      throw new LangbiangError(
        'UPDATE_FAILED',
        `the bundle is version ${manifest.version}, the order said ${ordered}; not installed`,
      );
    if (this.busy) this.busy.version = manifest.version;
    this.record('verified', { source, actor, version: manifest.version });
    let r: { version: string; previous: string | null };
    try {
      r = await installer.apply(bundle, source);
    } catch (err) {
      // the installer recorded its own `update` event (refused, failed) with the reason
      throw new InstallerRefused(err);
    }
    this.o.log.info(
      { version: r.version, previous: r.previous, source },
      `update ${r.version} installed; restarting into it`,
    );
    this.o.onInstalled({ ...r, exitCode: installer.restartExitCode });
    return r;
  }

  /** an `update` event unless the installer has recorded the outcome itself */
  private failed(source: UpdateSource, data: Record<string, unknown>, err: unknown): void {
    if (!(err instanceof InstallerRefused)) this.record('failed', { source, ...data, reason: describeError(err) });
  }

  private record(state: UpdateState, data: Record<string, unknown>): void {
    try {
      this.o.events.recordEvent('update', { outcome: state, ...data });
    } catch (err) {
      this.o.log.warn({ err: describeError(err), state }, 'update event not recorded');
    }
  }

  private partFile(sha: string): string {
    return join(this.downloads, `${sha}.part`);
  }

  /** `.part` files of orders no longer worked on (a newer order replaced them) */
  private removeStaleParts(keep: string | null): void {
    let names: string[];
    try {
      names = readdirSync(this.downloads);
    } catch {
      return;
    }
    for (const name of names) if (name !== `${keep}.part`) rmSync(join(this.downloads, name), { force: true });
  }

  private read(): RemoteState {
    try {
      const s = JSON.parse(readFileSync(join(this.dir, 'remote.json'), 'utf8')) as Partial<RemoteState>;
      return { lastIssuedAt: s.lastIssuedAt ?? 0, lastDigest: s.lastDigest ?? null, active: s.active ?? null };
    } catch {
      return { lastIssuedAt: 0, lastDigest: null, active: null };
    }
  }

  private write(state: RemoteState): void {
    mkdirSync(this.downloads, { recursive: true, mode: 0o750 });
    writeFileAtomic(join(this.dir, 'remote.json'), `${JSON.stringify(state, null, 2)}\n`, 0o640);
  }
}

function freeBytesAt(dir: string): number {
  mkdirSync(dir, { recursive: true });
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** The installer refused or failed to apply a bundle; it has recorded the event itself. */
class InstallerRefused extends Error {
  constructor(override readonly cause: unknown) {
    super(describeError(cause));
  }
}
