import { randomUUID } from 'node:crypto';
import type { CabinetConfig } from '../config/cabinet-schema.js';
import type { Clock } from '../core/clock.js';
import type { CommandExecutor, CommandRequest, CommandResult } from '../core/command.js';
import { describeError, LangbiangError } from '../core/errors.js';
import type { EventRecorder } from '../core/outbox.js';
import type { Reading } from '../core/reading.js';
import { parseCommandOverride, parseCommandSchedule } from './commands.js';
import { type DimCurve, levelToPoint } from './levels.js';
import { localDate } from './local-time.js';
import { type Night, SchedulePlan, type ScheduleSpec, type Site } from './plan.js';

/** Where a cabinet keeps what the city or a technician changed (the store's ControlTables). */
export interface CabinetSettings {
  setting<T>(key: string): T | undefined;
  setSetting(key: string, value: unknown, ts: number): void;
  deleteSetting(key: string): void;
}

export interface CabinetDeps {
  clock: Clock;
  site: Site;
  /** every switching goes through the command router (source 'schedule') */
  executor: CommandExecutor;
  settings?: CabinetSettings;
  alarms?: EventRecorder;
  /** top of the dimmer point's range (254 for DALI) */
  dimmerMax: number;
  log?: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
}

export interface Override {
  level: number;
  until: number;
  setAt: number;
  actor?: string;
  commandId?: string;
}

interface StoredSchedule {
  spec: ScheduleSpec;
  setAt: number;
  actor?: string;
  commandId?: string;
}

export interface CabinetStatus {
  id: string;
  name?: string;
  /** the level last applied (0 off), null before the first switching */
  level: number | null;
  appliedAt: number | null;
  /** what the schedule or override asks for now */
  desired: number;
  mode: 'schedule' | 'override' | 'hold';
  schedule: ScheduleSpec & { source: 'config' | 'command'; setAt?: number };
  override: Override | null;
  tonight: Night | null;
  alarms: string[];
  lastError?: string;
}

/** A clock this far back has not been set since boot: switching lamps by it would be guesswork. */
const PLAUSIBLE_WALL_MS = Date.UTC(2020, 0, 1);
const RETRY_FIRST_MS = 30_000;
const RETRY_MAX_MS = 30 * 60_000;
const COMMAND_DEADLINE_MS = 60_000;
const LAMP_FAULT_POINT = /^(lamp_failure|lamp_\d+_failure|group_\d+_failure|bus_fault)$/;

/**
 * One streetlight cabinet: decides from the gateway's own clock what the lamps should do (the
 * schedule, or a manual override until it expires), switches them through the command router
 * when that changes, and watches the readings for faults (DALI lamp failures, feeder current that
 * does not fit the scheduled state). Nothing here depends on the city being reachable.
 */
export class Cabinet {
  private plan: SchedulePlan;
  private scheduleSource: 'config' | 'command' = 'config';
  private scheduleSetAt: number | undefined;
  private override: Override | null;
  private applied: { level: number; at: number } | null = null;
  private retryAt = 0;
  private retryDelay = RETRY_FIRST_MS;
  private lastError: string | undefined;
  private readonly activeAlarms = new Set<string>();
  private ticking: Promise<void> = Promise.resolve();
  private warnedClock = false;

  constructor(
    readonly config: CabinetConfig,
    private readonly deps: CabinetDeps,
  ) {
    this.plan = new SchedulePlan(config.schedule, deps.site);
    const stored = this.read<StoredSchedule>('schedule');
    if (stored) {
      try {
        this.plan = new SchedulePlan(stored.spec, deps.site);
        this.scheduleSource = 'command';
        this.scheduleSetAt = stored.setAt;
      } catch (err) {
        deps.log?.warn({ cabinet: config.id, err: describeError(err) }, 'stored schedule unreadable; using the config');
      }
    }
    this.override = this.read<Override>('override') ?? null;
  }

  get id(): string {
    return this.config.id;
  }

  /** The level (%) the lamps should have now, and why. */
  desired(now = this.deps.clock.wallNow()): { level: number; mode: 'schedule' | 'override' } {
    if (this.override && this.override.until > now) return { level: this.override.level, mode: 'override' };
    return { level: this.plan.stateAt(now).level, mode: 'schedule' };
  }

  /**
   * Brings the lamps to the desired state if they are not there yet. Called every few seconds by
   * the controller and after each cabinet command; runs one at a time.
   */
  tick(): Promise<void> {
    this.ticking = this.ticking
      .then(() => this.step())
      .catch((err) => {
        this.lastError = describeError(err);
      });
    return this.ticking;
  }

  /** Resolves when the switching in progress (if any) is done. */
  idle(): Promise<void> {
    return this.ticking;
  }

  /** A command changed what the lamps should do: act now, even while backing off after a failure. */
  private tickNow(): Promise<void> {
    this.retryAt = 0;
    this.lastError = undefined;
    return this.tick();
  }

  private async step(): Promise<void> {
    const now = this.deps.clock.wallNow();
    if (now < PLAUSIBLE_WALL_MS) {
      if (!this.warnedClock)
        this.deps.log?.warn({ cabinet: this.id }, 'wall clock not set; holding the lamps as they are');
      this.warnedClock = true;
      return;
    }
    if (this.override && this.override.until <= now) {
      this.deps.log?.info({ cabinet: this.id, override: this.override }, 'override expired; back to the schedule');
      this.override = null;
      this.remove('override');
    }
    const { level } = this.desired(now);
    if (this.applied?.level === level) return;
    if (now < this.retryAt) return;
    await this.apply(level, now);
  }

  private async apply(level: number, now: number): Promise<void> {
    const { dimmer, contactor } = this.config;
    const wasOn = (this.applied?.level ?? 0) > 0 && this.applied !== null;
    const writes: { device: string; point: string; value: number | boolean }[] = [];
    const dimValue = levelToPoint(level, dimmer.curve as DimCurve, this.deps.dimmerMax);
    if (level > 0) {
      if (contactor && !wasOn) writes.push({ device: contactor.device, point: contactor.point, value: true });
      writes.push({ device: dimmer.device, point: dimmer.point, value: dimValue });
    } else {
      writes.push({ device: dimmer.device, point: dimmer.point, value: 0 });
      if (contactor) writes.push({ device: contactor.device, point: contactor.point, value: false });
    }
    for (const w of writes) {
      const result = await this.send(w, now);
      if (!result.ok) {
        this.lastError = `${w.device}.${w.point}: ${result.message ?? result.code}`;
        this.applied = null; // state unknown: the next attempt writes everything again
        this.retryAt = now + this.retryDelay;
        this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
        this.deps.log?.warn(
          { cabinet: this.id, err: this.lastError, retryInS: this.retryDelay / 2000 },
          'cabinet switching failed',
        );
        return;
      }
    }
    this.applied = { level, at: now };
    this.retryAt = 0;
    this.retryDelay = RETRY_FIRST_MS;
    this.lastError = undefined;
    this.deps.log?.info(
      { cabinet: this.id, lampLevel: level, dimmer: dimValue },
      level > 0 ? 'lamps set' : 'lamps off',
    );
  }

  private send(w: { device: string; point: string; value: number | boolean }, now: number): Promise<CommandResult> {
    return this.deps.executor.execute({
      id: `cabinet-${this.id}-${randomUUID()}`,
      source: 'schedule',
      actor: `cabinet:${this.id}`,
      device: w.device,
      point: w.point,
      value: w.value,
      deadline: now + COMMAND_DEADLINE_MS,
    });
  }

  /** Commands addressed to the cabinet: `schedule` (replace / restore) and `override`. */
  async execute(req: CommandRequest): Promise<{ readBack?: number | string | null; message?: string }> {
    const now = this.deps.clock.wallNow();
    if (req.point === 'schedule') {
      const spec = parseCommandSchedule(req.value);
      if (spec === 'config') {
        this.plan = new SchedulePlan(this.config.schedule, this.deps.site);
        this.scheduleSource = 'config';
        this.scheduleSetAt = undefined;
        this.remove('schedule');
      } else {
        this.plan = new SchedulePlan(spec, this.deps.site);
        this.scheduleSource = 'command';
        this.scheduleSetAt = now;
        this.write<StoredSchedule>('schedule', {
          spec,
          setAt: now,
          ...(req.actor ? { actor: req.actor } : {}),
          commandId: req.id,
        });
      }
      await this.tickNow();
      const n = this.plan.nextSwitchAt(now);
      return {
        message: `schedule ${spec === 'config' ? 'restored from the config' : 'replaced'}; next switch at ${new Date(n).toISOString()}`,
      };
    }
    if (req.point === 'override') {
      const parsed = parseCommandOverride(req.value, now, (t) => this.plan.nextSwitchAt(t));
      if (parsed === 'clear') {
        this.override = null;
        this.remove('override');
        await this.tickNow();
        return { message: 'override cleared; lamps follow the schedule' };
      }
      this.override = {
        level: parsed.level,
        until: parsed.until,
        setAt: now,
        ...(req.actor ? { actor: req.actor } : {}),
        commandId: req.id,
      };
      this.write('override', this.override);
      await this.tickNow();
      if (this.lastError) {
        throw new LangbiangError('DEVICE_ERROR', `override stored, but the lamps did not follow: ${this.lastError}`);
      }
      return {
        readBack: parsed.level,
        message: `lamps at ${parsed.level} % until ${new Date(parsed.until).toISOString()}`,
      };
    }
    throw new LangbiangError(
      'UNKNOWN_POINT',
      `cabinet ${this.id} takes the points schedule and override, not "${req.point}"`,
    );
  }

  /** Fault checks on polled readings: DALI lamp failures, feeder current against the scheduled state. */
  onReadings(readings: readonly Reading[]): void {
    const { dimmer, meter, feeder } = this.config;
    for (const r of readings) {
      if (r.quality !== 'good' || typeof r.value !== 'number') continue;
      if (r.device === dimmer.device && LAMP_FAULT_POINT.test(r.point)) {
        this.alarm(`lamp_failure:${r.point}`, r.value > 0, {
          alarm: r.point === 'bus_fault' ? 'dali_bus_fault' : 'lamp_failure',
          device: r.device,
          point: r.point,
          value: r.value,
        });
        continue;
      }
      if (!meter || r.device !== meter.device || r.point !== meter.point) continue;
      const applied = this.applied;
      if (!applied || r.ts < applied.at + feeder.settle) continue;
      const base = { device: r.device, point: r.point, value: r.value, level: applied.level };
      if (applied.level > 0) {
        this.alarm('feeder_no_current', feeder.minCurrentA !== undefined && r.value < feeder.minCurrentA, {
          ...base,
          alarm: 'feeder_no_current',
          minCurrentA: feeder.minCurrentA,
        });
        this.alarm('feeder_overcurrent', feeder.maxCurrentA !== undefined && r.value > feeder.maxCurrentA, {
          ...base,
          alarm: 'feeder_overcurrent',
          maxCurrentA: feeder.maxCurrentA,
        });
        this.alarm('feeder_current_while_off', false, { ...base, alarm: 'feeder_current_while_off' });
      } else {
        this.alarm('feeder_current_while_off', r.value > feeder.offMaxCurrentA, {
          ...base,
          alarm: 'feeder_current_while_off',
          offMaxCurrentA: feeder.offMaxCurrentA,
        });
        this.alarm('feeder_no_current', false, { ...base, alarm: 'feeder_no_current' });
        this.alarm('feeder_overcurrent', false, { ...base, alarm: 'feeder_overcurrent' });
      }
    }
  }

  /** Raises an alarm event when a condition starts, and a cleared event when it ends. */
  private alarm(key: string, active: boolean, data: Record<string, unknown>): void {
    if (active === this.activeAlarms.has(key)) return;
    if (active) this.activeAlarms.add(key);
    else this.activeAlarms.delete(key);
    const event = { cabinet: this.id, state: active ? 'raised' : 'cleared', ...data };
    this.deps.log?.[active ? 'warn' : 'info'](event, active ? 'cabinet alarm' : 'cabinet alarm cleared');
    try {
      this.deps.alarms?.recordEvent('alarm', event);
    } catch (err) {
      this.deps.log?.warn({ cabinet: this.id, err: describeError(err) }, 'alarm event not recorded');
    }
  }

  status(now = this.deps.clock.wallNow()): CabinetStatus {
    const d = this.desired(now);
    const today = this.plan.stateAt(now);
    return {
      id: this.id,
      ...(this.config.name ? { name: this.config.name } : {}),
      level: this.applied?.level ?? null,
      appliedAt: this.applied?.at ?? null,
      desired: d.level,
      mode: now < PLAUSIBLE_WALL_MS ? 'hold' : d.mode,
      schedule: {
        ...this.plan.spec,
        source: this.scheduleSource,
        ...(this.scheduleSetAt ? { setAt: this.scheduleSetAt } : {}),
      },
      override: this.override && this.override.until > now ? this.override : null,
      tonight: today.night ?? this.plan.night(localDate(now, this.deps.site.timezone)),
      alarms: [...this.activeAlarms],
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  private key(name: string): string {
    return `cabinet:${this.id}:${name}`;
  }

  private read<T>(name: string): T | undefined {
    try {
      return this.deps.settings?.setting<T>(this.key(name));
    } catch {
      return undefined;
    }
  }

  private write<T>(name: string, value: T): void {
    this.deps.settings?.setSetting(this.key(name), value, this.deps.clock.wallNow());
  }

  private remove(name: string): void {
    this.deps.settings?.deleteSetting(this.key(name));
  }
}
