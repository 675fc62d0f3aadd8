import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadProfiles } from '../hardware/profiles.js';
import { createBusDriver, type BusSettings } from './buses.js';
import { ClockWatcher, SystemClock, storeCorrection } from './clock/index.js';
import type { GatewayConfig } from './config/index.js';
import type { Clock } from './core/clock.js';
import type { BusDriver, BusHealth } from './core/driver.js';
import { describeError } from './core/errors.js';
import { EventBus } from './core/events.js';
import type { DeviceProfile } from './core/point.js';
import type { Reading } from './core/reading.js';
import { HttpServer } from './http/server.js';
import type { Logger } from './log.js';
import { pollSlotsFor } from './scheduler/poll-slots.js';
import { Scheduler, type ScheduledDevice } from './scheduler/scheduler.js';
import { Store } from './store/index.js';

export interface GatewayOptions {
  log: Logger;
  clock?: Clock;
  profiles?: Map<string, DeviceProfile>;
  /** serve /healthz etc. (default true) */
  http?: boolean;
}

const VERSION = '0.1.0';
const BUS_OPEN_GRACE_MS = 1500;

/**
 * The composition root: the one place that wires drivers, store, scheduler and HTTP together
 * (as zigbee2mqtt's controller wires its extensions). Each part can be started and stopped alone.
 */
export class Gateway {
  readonly events = new EventBus();
  readonly store: Store;
  readonly buses = new Map<string, BusDriver>();
  private scheduler: Scheduler | null = null;
  private watcher: ClockWatcher | null = null;
  private http: HttpServer | null = null;
  private readonly startedAt = Date.now();
  private lastReadingAt: number | null = null;
  private readingsStored = 0;
  httpAddress: { host: string; port: number } | null = null;

  private constructor(
    readonly config: GatewayConfig,
    private readonly opts: GatewayOptions,
    readonly clock: Clock,
  ) {
    const dataDir = resolve(config.gateway.dataDir);
    mkdirSync(dataDir, { recursive: true });
    this.store = Store.open({
      dataDir,
      maxBytes: config.storage.maxBytes,
      maxAgeMs: config.storage.maxAge,
      synchronous: config.storage.synchronous,
      batchMaxReadings: config.storage.batchMaxReadings,
      batchMaxDelayMs: config.storage.batchMaxDelay,
      clock,
      events: this.events,
    });
  }

  static async start(config: GatewayConfig, opts: GatewayOptions): Promise<Gateway> {
    const clock = opts.clock ?? new SystemClock({ assumeSynced: config.gateway.assumeClockSynced });
    const gw = new Gateway(config, opts, clock);
    try {
      await gw.startParts();
    } catch (err) {
      await gw.stop().catch(() => {});
      throw err;
    }
    return gw;
  }

  private async startParts(): Promise<void> {
    const { config, opts } = this;
    const log = opts.log;
    log.info({ gateway: config.gateway.id, epoch: this.store.epoch, dataDir: resolve(config.gateway.dataDir) }, 'store open');

    this.events.on('gap', (gap) => log.warn({ gap }, 'readings dropped by the store cap (gap event recorded)'));
    this.events.onListenerError((err) => log.error({ err: describeError(err) }, 'event listener failed'));

    const profiles = opts.profiles ?? loadProfiles(config.gateway.profilesDir ? [config.gateway.profilesDir] : []);

    for (const bus of config.buses) {
      try {
        const driver = await createBusDriver(bus as BusSettings);
        this.buses.set(bus.id, driver);
      } catch (err) {
        log.error({ bus: bus.id, err: describeError(err) }, 'bus not started; its devices are not polled');
      }
    }
    // Give every bus a short moment to open so the first poll finds it ready, but never wait on a
    // missing USB adapter: drivers keep retrying in the background and the other buses go on.
    await Promise.all(
      [...this.buses].map(([id, driver]) =>
        Promise.race([
          driver.open().catch((err) => log.warn({ bus: id, err: describeError(err) }, 'bus not open yet; retrying')),
          new Promise((r) => setTimeout(r, BUS_OPEN_GRACE_MS).unref()),
        ]),
      ),
    );

    const scheduled: ScheduledDevice[] = [];
    for (const dev of config.devices) {
      if (dev.enabled === false) continue;
      const bus = this.buses.get(dev.bus);
      const profile = profiles.get(dev.profile);
      if (!bus || !profile) continue;
      scheduled.push(...pollSlotsFor(dev, profile, bus));
    }

    this.scheduler = new Scheduler(scheduled, {
      clock: this.clock,
      sink: (readings: Reading[]) => {
        this.store.append(readings);
        this.readingsStored += readings.length;
        this.lastReadingAt = this.clock.wallNow();
      },
      onError: (device, err) => log.error({ device, err: describeError(err) }, 'poll failed'),
      startSpreadMs: 250,
    });

    this.watcher = new ClockWatcher(this.clock, {
      ...storeCorrection(this.store, ({ stepMs, corrected, reason }) => {
        log.info({ stepMs, corrected, reason }, 'wall clock stepped; earlier readings of this boot corrected by the step');
        this.events.emit('clock-synced', { stepMs, corrected });
      }),
      onError: (err: unknown) => log.warn({ err: describeError(err) }, 'clock check failed'),
    });
    this.watcher.start();

    this.scheduler.start();
    log.info({ devices: scheduled.length, buses: this.buses.size }, 'polling started');

    if (opts.http !== false) {
      this.http = new HttpServer(this, { host: config.panel.host, port: config.panel.port });
      const addr = await this.http.listen();
      this.httpAddress = { host: addr.address, port: addr.port };
      log.info({ port: addr.port }, 'http listening');
    }
  }

  /** Liveness, served without auth: nothing secret, nothing a stranger could use. */
  health(): Record<string, unknown> {
    const stats = this.store.stats();
    const buses = [...this.buses.values()].map((b) => b.health());
    return {
      status: 'ok',
      gateway: this.config.gateway.id,
      version: VERSION,
      uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
      lastReadingAt: this.lastReadingAt ? new Date(this.lastReadingAt).toISOString() : null,
      readings: stats.readings,
      lastSeq: stats.lastSeq,
      buses: buses.map((b: BusHealth) => ({
        bus: b.bus,
        open: b.open,
        devices: b.devices.map((d) => ({ device: d.device, state: d.state })),
      })),
      clockSynced: this.clock.isSynced(),
    };
  }

  busHealth(): BusHealth[] {
    return [...this.buses.values()].map((b) => b.health());
  }

  async stop(): Promise<void> {
    this.watcher?.stop();
    await this.scheduler?.stop();
    await this.http?.close();
    await Promise.allSettled([...this.buses.values()].map((b) => b.close()));
    this.store.close();
  }
}
