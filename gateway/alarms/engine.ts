import type { AlarmRuleConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { CommandExecutor } from '../core/command.js';
import { describeError } from '../core/errors.js';
import type { EventRecorder } from '../core/outbox.js';
import type { Reading } from '../core/reading.js';
import { AlarmRuleState, type AlarmTransition, type PersistedAlarmState } from './rule-state.js';

type RuleState = AlarmRuleState;

/** Durable key/value memory (the store's control settings). */
export interface AlarmSettings {
  setting<T>(key: string): T | undefined;
  setSetting(key: string, value: unknown, ts: number): void;
}

export interface AlarmLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** One alarm as the panel, the console and the API show it. */
export interface AlarmStatus {
  id: string;
  name?: string;
  severity: 'warning' | 'critical';
  device: string;
  point: string;
  /** normal, pending (condition holds, minimum duration not yet over) or active */
  state: 'normal' | 'pending' | 'active';
  /** the sensor is silent or faulty */
  fault: boolean;
  since?: number;
  faultSince?: number;
  value?: number;
  valueAt?: number;
}

export interface AlarmEngineOptions {
  rules: readonly AlarmRuleConfig[];
  clock: Clock;
  /** the command router: outputs are switched like any other command (validated, queued, audited) */
  executor: CommandExecutor;
  /** 'alarm' events, synced to the city ahead of telemetry */
  events: EventRecorder;
  settings?: AlarmSettings;
  log?: AlarmLog;
  /** told on every transition (the live panel) */
  onChange?: (status: AlarmStatus, transition: AlarmTransition) => void;
  /** how often time-based conditions are checked and failed output writes retried (default 1 s) */
  tickMs?: number;
}

interface Output {
  device: string;
  point: string;
  onValue: number | boolean;
  offValue: number | boolean;
  /** rules that drive it, and whether they want it on in a fault */
  drivers: Array<{ rule: string; onFault: boolean }>;
  /** what was last written successfully (undefined: nothing yet, or the write failed) */
  written?: number | boolean;
  writing: boolean;
}

const settingKey = (id: string) => `alarm:${id}`;

/**
 * Local alarms (the `alarms:` section): evaluated in the gateway on every stored reading and every
 * second, with no network. Transitions become 'alarm' events (synced before telemetry), switch
 * outputs through the command router, and are kept in the store so that an alarm active before a
 * reboot is still active after it — with its siren switched on again at start.
 *
 * An output shared by several rules (one siren for the street) is on while any of them wants it.
 */
export class AlarmEngine {
  private readonly rules = new Map<string, RuleState>();
  private readonly byPoint = new Map<string, RuleState[]>();
  private readonly outputs = new Map<string, Output>();
  private timer: NodeJS.Timeout | undefined;
  private commandSeq = 0;

  constructor(private readonly opts: AlarmEngineOptions) {
    const now = opts.clock.wallNow();
    for (const rule of opts.rules) {
      const restored = this.load(rule.id);
      const state = new AlarmRuleState(rule, restored, now);
      this.rules.set(rule.id, state);
      const k = `${rule.device}\u0000${rule.point}`;
      const list = this.byPoint.get(k);
      if (list) list.push(state);
      else this.byPoint.set(k, [state]);
      for (const a of rule.actions) {
        const ok = `${a.device}\u0000${a.point}`;
        let out = this.outputs.get(ok);
        if (!out) {
          out = {
            device: a.device,
            point: a.point,
            onValue: a.value,
            offValue: a.clearValue,
            drivers: [],
            writing: false,
          };
          this.outputs.set(ok, out);
        }
        out.drivers.push({ rule: rule.id, onFault: a.onFault });
      }
      if (restored?.active)
        opts.log?.warn({ alarm: rule.id, since: restored.since }, 'alarm still active after restart');
    }
  }

  /** Puts every output in the state the alarms want (sirens of alarms active before a reboot go on again). */
  start(): void {
    if (this.timer) return;
    this.syncOutputs();
    const every = this.opts.tickMs ?? 1000;
    this.timer = setInterval(() => this.tick(), every);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Every reading the gateway stores goes through here (cheap: one map lookup per reading). */
  onReadings(readings: readonly Reading[]): void {
    if (this.rules.size === 0) return;
    for (const r of readings) {
      const states = this.byPoint.get(`${r.device}\u0000${r.point}`);
      if (!states) continue;
      for (const s of states) this.apply(s, s.observe(r));
    }
  }

  tick(): void {
    const now = this.opts.clock.wallNow();
    for (const s of this.rules.values()) this.apply(s, s.tick(now));
    this.syncOutputs();
  }

  status(): AlarmStatus[] {
    return [...this.rules.values()].map((s) => this.statusOf(s));
  }

  private statusOf(s: RuleState): AlarmStatus {
    const snap = s.snapshot;
    const r = s.rule;
    const st: AlarmStatus = {
      id: r.id,
      severity: r.severity,
      device: r.device,
      point: r.point,
      state: snap.active ? 'active' : snap.pending ? 'pending' : 'normal',
      fault: snap.fault,
    };
    if (r.name !== undefined) st.name = r.name;
    if (snap.since !== undefined) st.since = snap.since;
    if (snap.faultSince !== undefined) st.faultSince = snap.faultSince;
    if (snap.value !== undefined) st.value = snap.value;
    if (snap.valueAt !== undefined) st.valueAt = snap.valueAt;
    return st;
  }

  private apply(s: RuleState, transitions: AlarmTransition[]): void {
    if (transitions.length === 0) return;
    const now = this.opts.clock.wallNow();
    const snap = s.snapshot;
    const { pending: _pending, ...persist } = snap;
    this.save(s.rule.id, persist, now);
    const status = this.statusOf(s);
    for (const t of transitions) {
      const r = s.rule;
      const data: Record<string, unknown> = {
        alarm: r.id,
        state: t,
        severity: r.severity,
        device: r.device,
        point: r.point,
        ts: now,
      };
      if (r.name !== undefined) data.name = r.name;
      if (snap.value !== undefined) data.value = snap.value;
      if (r.above !== undefined) data.above = r.above;
      if (r.below !== undefined) data.below = r.below;
      if (r.rise !== undefined) data.rise = { by: r.rise.by, withinMs: r.rise.within };
      try {
        this.opts.events.recordEvent('alarm', data);
      } catch (err) {
        this.opts.log?.warn({ alarm: r.id, err: describeError(err) }, 'alarm event not recorded');
      }
      const level = t === 'raised' || t === 'fault' ? 'warn' : 'info';
      this.opts.log?.[level]({ alarm: r.id, transition: t, value: snap.value }, `alarm ${t}`);
      this.opts.onChange?.(status, t);
    }
    this.syncOutputs();
  }

  /** Writes each output whose wanted value differs from what was last written (or failed). */
  private syncOutputs(): void {
    for (const out of this.outputs.values()) {
      if (out.writing) continue;
      const want = this.wanted(out);
      if (out.written === want) continue;
      out.writing = true;
      const id = `alarm-${out.drivers[0]?.rule}-${this.opts.clock.wallNow()}-${++this.commandSeq}`;
      this.opts.executor
        .execute({
          id,
          device: out.device,
          point: out.point,
          value: want,
          // the router's existing source for the gateway's own automation; the actor says which alarm
          source: 'schedule',
          actor: `alarm:${out.drivers.map((d) => d.rule).join(',')}`,
        })
        .then(
          (res) => {
            out.writing = false;
            if (res.ok) out.written = want;
            else {
              out.written = undefined;
              this.opts.log?.warn(
                { device: out.device, point: out.point, code: res.code, msg: res.message },
                'alarm output not switched; retrying',
              );
            }
          },
          (err) => {
            out.writing = false;
            out.written = undefined;
            this.opts.log?.warn(
              { device: out.device, point: out.point, err: describeError(err) },
              'alarm output not switched; retrying',
            );
          },
        );
    }
  }

  private wanted(out: Output): number | boolean {
    const on = out.drivers.some((d) => {
      const snap = this.rules.get(d.rule)?.snapshot;
      return snap !== undefined && (snap.active || (d.onFault && snap.fault));
    });
    return on ? out.onValue : out.offValue;
  }

  private load(id: string): PersistedAlarmState | undefined {
    try {
      return this.opts.settings?.setting<PersistedAlarmState>(settingKey(id));
    } catch (err) {
      this.opts.log?.warn({ alarm: id, err: describeError(err) }, 'alarm state not readable; starting as normal');
      return undefined;
    }
  }

  private save(id: string, state: PersistedAlarmState, now: number): void {
    try {
      this.opts.settings?.setSetting(settingKey(id), state, now);
    } catch (err) {
      this.opts.log?.warn({ alarm: id, err: describeError(err) }, 'alarm state not saved');
    }
  }
}
