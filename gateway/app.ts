import type { KeyObject } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { NorthboundAgent } from '../cloud-sync/northbound/agent.js';
import type { FlowsSupervisor } from '../flows/host/index.js';
import type { AlarmEngine } from './alarms/index.js';
import type { AuthContext } from './auth/index.js';
import { type BusSettings, createBusDriver } from './buses.js';
import type { CabinetController } from './cabinet/index.js';
import { ClockWatcher, SystemClock, storeCorrection } from './clock/index.js';
import { CommandRouter, type RouterDevice } from './commands/router.js';
import { fillCommandDevices } from './commands/wiring.js';
import type { GatewayConfig } from './config/index.js';
import { ackKeysDir, controlKeysDir, loadAckKeys, loadControlKeys } from './control-keys.js';
import type { Clock } from './core/clock.js';
import type { BusDriver, BusHealth } from './core/driver.js';
import { describeError } from './core/errors.js';
import { EventBus, type GatewayHealthChange } from './core/events.js';
import type { DeviceProfile } from './core/point.js';
import type { Reading } from './core/reading.js';
import { DeviceHealthWatch } from './device-health-watch.js';
import { busProblem, busReport, healthProblems } from './health.js';
import { type ConfigHost, HttpServer } from './http/server.js';
import type { Logger } from './log.js';
import type { ParkingSigns } from './parking-signs.js';
import { RefusalBudget } from './refusals.js';
import { pollSlotsFor } from './scheduler/poll-slots.js';
import { type ScheduledDevice, Scheduler } from './scheduler/scheduler.js';
import { Store } from './store/index.js';
import type { HealthLike } from './update/confirm.js';
import { packageVersion } from './update/layout.js';
import type { UpdateMedia } from './update/media.js';
import type { RemoteUpdater } from './update/remote.js';
import { ownUpdateStatus } from './update/status.js';

export interface GatewayOptions {
  log: Logger;
  clock?: Clock;
  profiles?: Map<string, DeviceProfile>;
  /** serve /healthz etc. (default true) */
  http?: boolean;
  /** logins and sessions; passed in so they outlive a restart with a new config */
  auth?: AuthContext;
  /** lets the console apply a new config (GatewayHost); without it the config is read-only */
  configHost?: ConfigHost | null;
  /** where the city's `config` messages go (gateway/remote-config); without one the topic is not subscribed */
  onRemoteConfig?: (payload: Buffer) => void;
}

/** the running release's version: its package.json, which `langbiang release pack` stamps */
const VERSION = packageVersion();
const BUS_OPEN_GRACE_MS = 1500;

/**
 * The composition root: the one place that wires drivers, store, scheduler and HTTP together
 * (as zigbee2mqtt's controller wires its extensions). Each part can be started and stopped alone.
 */
export class Gateway {
  readonly events = new EventBus();
  readonly store: Store;
  readonly buses = new Map<string, BusDriver>();
  /** The one command path: MQTT cmd, the HTTP API, Node-RED and the cabinet schedules call execute(). */
  readonly commands: CommandRouter;
  /** Streetlight cabinets (null when the config has none). */
  cabinets: CabinetController | null = null;
  /** Local alarms (null when the config has none). */
  alarms: AlarmEngine | null = null;
  /** Free-spaces signs (null when the config has none). */
  private parkingSigns: ParkingSigns | null = null;
  /** Node-RED in its own process (null unless flows.enabled). */
  flows: FlowsSupervisor | null = null;
  /** events about commands refused before they were read: a flood from the broker is capped */
  private readonly refusals = new RefusalBudget();
  /** Updates from the city, the console and a USB stick, one at a time (gateway/update). */
  updates: RemoteUpdater | null = null;
  private updateMedia: UpdateMedia | null = null;
  /** MQTT sync to the city (null unless the config has a `sync` section). */
  sync: NorthboundAgent | null = null;
  /** the profiles the devices are polled with (the HTTP API shows their points) */
  profiles: ReadonlyMap<string, DeviceProfile> | undefined;
  private readonly commandDevices = new Map<string, RouterDevice>();
  private scheduler: Scheduler | null = null;
  private watcher: ClockWatcher | null = null;
  private healthWatch: DeviceHealthWatch | null = null;
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
    this.commands = new CommandRouter({
      clock,
      devices: this.commandDevices,
      ledger: this.store.control(),
      audit: this.store,
      onReadBack: this.storeReadBack,
      onError: (what, err) => opts.log.error({ err: describeError(err) }, `${what} failed`),
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
    log.info(
      { gateway: config.gateway.id, epoch: this.store.epoch, dataDir: resolve(config.gateway.dataDir) },
      'store open',
    );

    this.events.on('gap', (gap) => log.warn({ gap }, 'readings dropped by the store cap (gap event recorded)'));
    this.events.onListenerError((err) => log.error({ err: describeError(err) }, 'event listener failed'));

    // the YAML parser and the profile schema are loaded only when no profiles were handed in (RSS target)
    const profiles =
      opts.profiles ??
      (await import('../hardware/profiles.js')).loadProfiles(
        config.gateway.profilesDir ? [config.gateway.profilesDir] : [],
      );
    this.profiles = profiles;

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
          driver.open().catch((err) => {
            const bus = config.buses.find((b) => b.id === id);
            const problem = bus ? busProblem(bus, driver.health().lastError) : describeError(err);
            log.warn(
              { bus: id, problem, err: describeError(err) },
              `bus ${id} not open: ${problem}; its devices show bus_error; retrying in the background`,
            );
          }),
          new Promise((r) => setTimeout(r, BUS_OPEN_GRACE_MS).unref()),
        ]),
      ),
    );

    const scheduled: ScheduledDevice[] = [];
    const lastOccupancy = new Map<string, { value: number; ts: number }>();
    for (const r of this.store.latest())
      if (r.point === 'occupancy' && r.quality === 'good' && typeof r.value === 'number')
        lastOccupancy.set(r.device, { value: r.value, ts: r.ts });
    for (const dev of config.devices) {
      if (dev.enabled === false) continue;
      const bus = this.buses.get(dev.bus);
      const profile = profiles.get(dev.profile);
      if (!bus || !profile) continue;
      // a profile that counts days (the weather meter's rain_today) gets the gateway's time zone unless set
      let withZone =
        profile.options?.timezone && dev.options?.timezone === undefined
          ? { ...dev, options: { ...dev.options, timezone: config.gateway.timezone } }
          : dev;
      // a car park's count survives a restart: its last stored occupancy goes back to the counter
      const lastCount = profile.pins?.includes('entry') ? lastOccupancy.get(dev.id) : undefined;
      if (lastCount)
        withZone = {
          ...withZone,
          options: { ...withZone.options, restoreOccupancy: lastCount.value, restoreAt: lastCount.ts },
        };
      scheduled.push(...pollSlotsFor(withZone, profile, bus));
    }
    // event-driven buses (GPIO edges, Firmata reports) arm their inputs before the first poll
    await Promise.all(
      [...this.buses].map(async ([id, driver]) => {
        const bindings = new Set(scheduled.filter((s) => s.bus === driver).map((s) => s.binding));
        await driver
          .attach?.([...bindings])
          .catch((err) => log.warn({ bus: id, err: describeError(err) }, 'devices not armed yet'));
      }),
    );

    fillCommandDevices(this.commandDevices, config, profiles, this.buses);

    this.scheduler = new Scheduler(scheduled, {
      clock: this.clock,
      sink: this.storePolledReadings,
      onError: (device, err) => log.error({ device, err: describeError(err) }, 'poll failed'),
      startSpreadMs: 250,
    });

    this.watcher = new ClockWatcher(this.clock, {
      ...storeCorrection(this.store, ({ stepMs, corrected, reason }) => {
        log.info(
          { stepMs, corrected, reason },
          'wall clock stepped; earlier readings of this boot corrected by the step',
        );
        this.events.emit('clock-synced', { stepMs, corrected });
      }),
      onError: (err: unknown) => log.warn({ err: describeError(err) }, 'clock check failed'),
    });
    this.watcher.start();

    if (config.alarms.length > 0) {
      const { AlarmEngine } = await import('./alarms/index.js');
      this.alarms = new AlarmEngine({
        rules: config.alarms,
        clock: this.clock,
        executor: this.commands,
        events: this.store,
        settings: this.store.control(),
        log: log.child({ part: 'alarms' }),
        onChange: (s, transition) =>
          this.events.emit('alarm', { id: s.id, transition, state: s.state, fault: s.fault }),
      });
      // before the first poll: a siren that was on before a reboot goes on again at once
      this.alarms.start();
      log.info({ alarms: config.alarms.length }, 'local alarms armed');
    }

    if (config.parkingSigns.length > 0) {
      const { ParkingSigns } = await import('./parking-signs.js');
      this.parkingSigns = new ParkingSigns(config.parkingSigns, this.commands, (sign, message) =>
        log.warn({ sign: sign.device, carPark: sign.carPark, err: message }, 'free-spaces sign not updated'),
      );
    }

    this.scheduler.start();
    log.info({ devices: scheduled.length, buses: this.buses.size }, 'polling started');

    this.healthWatch = new DeviceHealthWatch({
      report: () => this.busHealth(),
      events: this.events,
      onError: (err) => log.warn({ err: describeError(err) }, 'device health check failed'),
    });
    this.healthWatch.start();

    if (config.cabinets.length > 0) {
      // loaded only for cabinet gateways (suncalc and the schedule code)
      const { CabinetController } = await import('./cabinet/index.js');
      this.cabinets = new CabinetController({
        cabinets: config.cabinets,
        profileOf: (id) => this.commandDevices.get(id)?.binding.profile,
        site: { ...config.gateway.location, timezone: config.gateway.timezone },
        clock: this.clock,
        executor: this.commands,
        settings: this.store.control(),
        alarms: this.store,
        events: this.events,
        log,
      });
      for (const cabinet of this.cabinets.cabinets) this.commands.addTarget(cabinet.id, cabinet);
      this.cabinets.start();
      log.info({ cabinets: this.cabinets.cabinets.length }, 'cabinet schedules running');
    }

    if (config.flows.enabled) {
      const { startFlowsHost } = await import('./flows-host.js');
      this.flows = await startFlowsHost({
        config,
        log,
        events: this.events,
        commands: this.commands,
        store: this.store,
      });
    }

    await this.startUpdates();
    if (config.sync) await this.startSync(config.sync);

    if (opts.http !== false) {
      this.http = new HttpServer(this, {
        host: config.panel.host,
        port: config.panel.port,
        log,
        auth: opts.auth,
        configHost: opts.configHost ?? null,
      });
      const addr = await this.http.listen();
      this.httpAddress = { host: addr.address, port: addr.port };
      log.info({ port: addr.port }, 'http listening');
    }
  }

  /**
   * Poll → store: the scheduler's sink for each device poll. The very first poll is committed at
   * once, not a batch delay later: whoever just started the gateway sees stored data sooner (start
   * to first reading ≤ 1.5 s); one extra commit per start.
   */
  private readonly storePolledReadings = (readings: Reading[]): void => {
    this.store.append(readings);
    // the local alarms and the parking signs see every reading as it is stored, offline or not
    this.alarms?.onReadings(readings);
    this.parkingSigns?.onReadings(readings);
    if (this.readingsStored === 0) {
      try {
        this.store.flush();
      } catch {
        this.store.append([]); // re-arms the batch timer, which retries the commit
      }
    }
    this.readingsStored += readings.length;
    this.lastReadingAt = this.clock.wallNow();
  };

  /** Command → store: the state a write read back, so it shows on the panel at once, not at the next poll. */
  private readonly storeReadBack = (reading: Reading): void => {
    this.store.append([reading]);
  };

  /**
   * Store → sync: every commit of readings wakes the sync agent, so live readings leave within the
   * agent's batch delay instead of at its next idle check. The agent reads them from the store (the
   * outbox), never from the event: the event only says "there is more".
   */
  private wakeSyncOnCommit(agent: { wake(): void }): void {
    this.events.on('readings', () => agent.wake());
  }

  /** mqtt and the agent are loaded only when the config syncs (RSS target). */
  private async startSync(sync: NonNullable<GatewayConfig['sync']>): Promise<void> {
    if (sync.format === 'thingsboard' || sync.format === 'sparkplug') {
      const { createStandardSyncAgent } = await import('./northbound.js');
      const agent = await createStandardSyncAgent({
        config: this.config,
        sync,
        profiles: this.profiles ?? new Map(),
        store: this.store,
        commands: this.commands,
        clock: this.clock,
        log: this.opts.log,
      });
      this.wakeSyncOnCommit(agent);
      await agent.start();
      this.sync = agent;
      return;
    }
    const { SyncAgent } = await import('../cloud-sync/agent.js');
    const { CONFIRMED_CURSOR, EVENTS_CONFIRMED_CURSOR, EVENTS_CURSOR, SYNC_CURSOR } = await import('./store/index.js');
    const controlKeys = this.loadControlKeys();
    const agent = new SyncAgent({
      gatewayId: this.config.gateway.id,
      outbox: this.store,
      events: this.store,
      commands: this.commands,
      clock: this.clock,
      log: this.opts.log.child({ part: 'sync' }),
      version: VERSION,
      updateStatus: () => {
        const u = this.updateStatus();
        if ('error' in u) return undefined;
        return {
          previous: u.previous,
          ...(u.pending ? { pending: u.pending } : {}),
          ...(u.last ? { last: u.last } : {}),
        };
      },
      url: sync.url,
      clientId: sync.clientId,
      tls: sync.tls,
      username: sync.username,
      passwordFile: sync.passwordFile,
      format: sync.format,
      batchMaxReadings: sync.batchMaxReadings,
      batchMaxBytes: sync.batchMaxBytes,
      batchMaxDelayMs: sync.batchMaxDelay,
      backlogRate: sync.backlogRate,
      confirm: sync.confirm,
      confirmTimeoutMs: sync.confirmTimeout,
      confirmStartupWindowMs: sync.confirmStartupWindow,
      statusHeartbeatMs: sync.statusHeartbeat,
      cursorName: SYNC_CURSOR,
      eventsCursorName: EVENTS_CURSOR,
      confirmedCursorName: CONFIRMED_CURSOR,
      eventsConfirmedCursorName: EVENTS_CONFIRMED_CURSOR,
      onConfig: sync.remoteConfig.enabled ? this.opts.onRemoteConfig : undefined,
      onUpdate: sync.remoteUpdate.enabled && this.updates ? (p) => this.updates?.handleMessage(p) : undefined,
      ackKeys: this.loadAckKeys(),
      commandTrust: {
        keys: controlKeys,
        onRefused: (r) => {
          // a command refused before it was read: said once per message, within a budget
          const data = this.refusals.admit({ topic: 'cmd', ...r });
          if (data) this.store.recordEvent('refused', data);
        },
      },
    });
    this.wakeSyncOnCommit(agent);
    await agent.start();
    this.sync = agent;
  }

  /**
   * The one place updates come in past their transport (gateway/update/remote.ts): the city's
   * signed orders, the console's upload, a bundle on the boot partition or a USB stick. The
   * installer itself (release-key check, side-by-side install) is loaded when an update comes.
   */
  private async startUpdates(): Promise<void> {
    const { RemoteUpdater } = await import('./update/remote.js');
    const { loadInstaller } = await import('./update/installer.js');
    const dataDir = resolve(this.config.gateway.dataDir);
    const log = this.opts.log.child({ part: 'update' });
    let installer: ReturnType<typeof loadInstaller> | null = null;
    const sync = this.config.sync;
    this.updates = new RemoteUpdater({
      gatewayId: this.config.gateway.id,
      dataDir,
      keys: () => loadControlKeys(dataDir).keys,
      installer: () => {
        installer ??= import('./update/confirm.js').then(({ baselineFromHealth }) =>
          loadInstaller({
            dataDir,
            log,
            events: this.store,
            // what is healthy under this release now is what the new one must match
            context: { baseline: () => baselineFromHealth(this.health() as HealthLike) },
          }),
        );
        // a failed load is tried again at the next update
        installer.catch(() => {
          installer = null;
        });
        return installer;
      },
      events: this.store,
      log,
      allowHttp: sync?.remoteUpdate.allowHttp ?? false,
      maxBytesPerSec: sync?.remoteUpdate.maxBandwidth,
      storeHeadroom: () => Math.max(0, this.config.storage.maxBytes - this.store.stats().bytes),
      onInstalled: ({ version }) => {
        // a clean stop (store flushed, sync cursors committed) with the restart code, after the
        // answer that reported it (the console) has gone out; systemd starts the new release
        setTimeout(() => {
          void import('./update/restart.js').then(({ requestUpdateRestart }) => {
            if (!requestUpdateRestart(`update ${version} installed`))
              this.opts.log.warn({ version }, 'release installed; restart the gateway to run it');
          });
        }, 300).unref();
      },
    });
    this.updates.resumeAtStart();
    const updates = this.updates;
    const { UpdateMedia } = await import('./update/media.js');
    this.updateMedia = new UpdateMedia({
      dataDir,
      log,
      busy: () => updates.status().busy,
      install: (file) => updates.installLocal(file, 'usb', 'usb'),
    });
    this.updateMedia.start();
  }

  /**
   * The city keys pinned in the data directory, said at start: without one, remote configs and
   * MQTT commands are refused (local sources — console, CLI, schedules, flows — are unaffected).
   */
  private loadControlKeys(): Map<string, KeyObject> {
    const log = this.opts.log.child({ part: 'trust' });
    const dataDir = this.config.gateway.dataDir;
    const { keys, problems } = loadControlKeys(dataDir);
    for (const problem of problems) log.warn({ problem }, 'a pinned city key is unusable and ignored');
    if (keys.size === 0)
      log.warn(
        { dir: controlKeysDir(dataDir) },
        'no city key is pinned: configs and commands from the city over MQTT will be refused',
      );
    else log.info({ keys: [...keys.keys()] }, 'city keys pinned; configs and commands over MQTT must be signed by one');
    return keys;
  }

  /**
   * The city receivers' keys pinned in the data directory: with one, only signed end-to-end acks
   * count; without, any ack on the broker does (said at start, as the trust it implies).
   */
  private loadAckKeys(): Map<string, KeyObject> {
    const log = this.opts.log.child({ part: 'trust' });
    const dataDir = this.config.gateway.dataDir;
    const { keys, problems } = loadAckKeys(dataDir);
    for (const problem of problems) log.warn({ problem }, 'a pinned receiver key is unusable and ignored');
    if (keys.size > 0)
      log.info({ keys: [...keys.keys()] }, 'receiver keys pinned; end-to-end acks must be signed by one');
    else if (this.config.sync?.confirm !== false)
      log.info(
        { dir: ackKeysDir(dataDir) },
        'no receiver key is pinned: end-to-end acks are taken unsigned (whoever can publish on the broker can send one)',
      );
    return keys;
  }

  /** The health at the last check of the one health watch (null before it ran). */
  get healthNow(): GatewayHealthChange | null {
    return this.healthWatch?.current ?? null;
  }

  /**
   * Liveness and health, served without auth: nothing secret, nothing a stranger could use.
   * `degraded` (with `problems`, one sentence each) when a bus is not open or a device is offline;
   * /healthz answers it with 503 so Docker's HEALTHCHECK sees it (docs/operations.md).
   */
  health(): Record<string, unknown> {
    const stats = this.store.stats();
    const buses = this.busHealth();
    const problems = healthProblems(buses);
    return {
      status: problems.length > 0 ? 'degraded' : 'ok',
      problems,
      gateway: this.config.gateway.id,
      version: VERSION,
      uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
      lastReadingAt: this.lastReadingAt ? new Date(this.lastReadingAt).toISOString() : null,
      readings: stats.readings,
      lastSeq: stats.lastSeq,
      buses: buses.map((b: BusHealth) => ({
        bus: b.bus,
        open: b.open,
        ...(b.problem ? { problem: b.problem } : {}),
        devices: b.devices.map((d) => ({ device: d.device, state: d.state })),
      })),
      clockSynced: this.clock.isSynced(),
      ...(this.flows ? { flows: this.flows.status() } : {}),
      ...(this.sync ? { sync: syncHealth(this.sync) } : {}),
      update: this.updateStatus(),
    };
  }

  /** Running and previous release, a release waiting for confirmation, the last update's outcome. */
  updateStatus(): ReturnType<typeof ownUpdateStatus> | { running: string; error: string } {
    try {
      return ownUpdateStatus(this.config.gateway.dataDir);
    } catch (err) {
      return { running: VERSION, error: describeError(err) };
    }
  }

  /** Every configured bus (open or not) with every enabled device on it (gateway/health.ts). */
  busHealth(): BusHealth[] {
    return busReport(this.config, this.buses);
  }

  async stop(): Promise<void> {
    this.watcher?.stop();
    this.healthWatch?.stop();
    this.alarms?.stop();
    await this.cabinets?.stop();
    // before the buses close: the fail-safe writes go out on them
    await this.flows?.stop();
    await this.scheduler?.stop();
    // a download in progress stops; its .part file is resumed at the next start
    this.updates?.stop();
    this.updateMedia?.stop();
    // before the store closes: the agent reads it while it sends what is pending
    await this.sync?.stop();
    await this.http?.close();
    await Promise.allSettled([...this.buses.values()].map((b) => b.close()));
    this.store.close();
  }
}

function syncHealth(agent: NorthboundAgent): Record<string, unknown> {
  const s = agent.status();
  return {
    connected: s.connected,
    backlog: s.backlog,
    oldestUnsentAgeS: s.oldestUnsentAgeS,
    lastAckAt: s.lastAckAt ? new Date(s.lastAckAt).toISOString() : null,
    inflight: s.inflight,
    eventsBacklog: s.eventsBacklog,
    confirm: s.confirmMode,
    unconfirmed: s.unconfirmed,
    oldestUnconfirmedAgeS: s.oldestUnconfirmedAgeS,
    lastConfirmAt: s.lastConfirmAt ? new Date(s.lastConfirmAt).toISOString() : null,
    resends: s.resends,
  };
}
