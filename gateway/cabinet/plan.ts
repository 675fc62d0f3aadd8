import { getTimes } from 'suncalc';
import { addDays, dateKey, type LocalDate, localDate, zonedTime } from './local-time.js';
import { parseTimeExpr, type TimeExpr } from './time-expr.js';

/** A schedule as written (config or a city command): times as text, levels in percent. */
export interface ScheduleSpec {
  on: string;
  off: string;
  /** light level in % when the lamps come on */
  level: number;
  steps: { at: string; level: number }[];
}

export interface Site {
  lat: number;
  lon: number;
  timezone: string;
}

/** One night's switching times as instants. */
export interface Night {
  /** local date of the evening the night starts */
  date: string;
  onAt: number;
  offAt: number;
  steps: { at: number; level: number }[];
  level: number;
}

export interface PlannedState {
  /** 0 = off, else percent */
  level: number;
  /** when the plan changes next (ms) */
  nextChangeAt: number;
  night: Night | null;
}

interface Parsed {
  on: TimeExpr;
  off: TimeExpr;
  level: number;
  steps: { at: TimeExpr; level: number }[];
}

const DAY_MS = 86_400_000;

/**
 * Turns a schedule into instants for a site: on at sunset (or a clock time), off at sunrise,
 * dimming steps between. Sun times come from suncalc for the site's coordinates, taken for the
 * local calendar date in the site's time zone. Everything is a pure function of the wall time,
 * so the lamps follow the gateway's own clock whether or not the city is reachable.
 */
export class SchedulePlan {
  private readonly parsed: Parsed;
  private readonly nights = new Map<string, Night | null>();

  constructor(
    readonly spec: ScheduleSpec,
    private readonly site: Site,
  ) {
    this.parsed = {
      on: parseTimeExpr(spec.on),
      off: parseTimeExpr(spec.off),
      level: spec.level,
      steps: spec.steps.map((s) => ({ at: parseTimeExpr(s.at), level: s.level })),
    };
  }

  /** The night that starts on the evening of this local date, or null where the sun does not set/rise. */
  night(date: LocalDate): Night | null {
    const key = dateKey(date);
    if (this.nights.has(key)) return this.nights.get(key)!;
    const onAt = this.resolve(this.parsed.on, date);
    let offAt = this.resolve(this.parsed.off, date);
    if (offAt !== null && onAt !== null && offAt <= onAt) offAt = this.resolve(this.parsed.off, addDays(date, 1));
    let night: Night | null = null;
    if (onAt !== null && offAt !== null && offAt > onAt && offAt - onAt < DAY_MS) {
      const steps: Night['steps'] = [];
      for (const s of this.parsed.steps) {
        let at = this.resolve(s.at, date);
        if (at !== null && at < onAt) at = this.resolve(s.at, addDays(date, 1));
        if (at !== null && at >= onAt && at < offAt) steps.push({ at, level: s.level });
      }
      steps.sort((a, b) => a.at - b.at);
      night = { date: key, onAt, offAt, steps, level: this.parsed.level };
    }
    if (this.nights.size > 16) this.nights.clear();
    this.nights.set(key, night);
    return night;
  }

  stateAt(ms: number): PlannedState {
    const today = localDate(ms, this.site.timezone);
    for (const date of [addDays(today, -1), today]) {
      const n = this.night(date);
      if (!n || ms < n.onAt || ms >= n.offAt) continue;
      let level = n.level;
      let nextChangeAt = n.offAt;
      for (const s of n.steps) {
        if (s.at <= ms) level = s.level;
        else {
          nextChangeAt = s.at;
          break;
        }
      }
      return { level, nextChangeAt, night: n };
    }
    let nextChangeAt = ms + DAY_MS;
    for (const date of [today, addDays(today, 1)]) {
      const n = this.night(date);
      if (n && n.onAt > ms) {
        nextChangeAt = Math.min(nextChangeAt, n.onAt);
        break;
      }
    }
    return { level: 0, nextChangeAt, night: null };
  }

  /** The next time the lamps are switched on or off (dimming steps aside). */
  nextSwitchAt(ms: number): number {
    const today = localDate(ms, this.site.timezone);
    let best = Number.POSITIVE_INFINITY;
    for (const date of [addDays(today, -1), today, addDays(today, 1)]) {
      const n = this.night(date);
      if (!n) continue;
      for (const t of [n.onAt, n.offAt]) if (t > ms && t < best) best = t;
    }
    return Number.isFinite(best) ? best : ms + DAY_MS;
  }

  private resolve(e: TimeExpr, date: LocalDate): number | null {
    if (e.kind === 'clock') return zonedTime(date, e.hour, e.minute, this.site.timezone);
    // suncalc picks the day from the instant it is given: local noon is unambiguous
    const noon = zonedTime(date, 12, 0, this.site.timezone);
    const t = getTimes(new Date(noon), this.site.lat, this.site.lon)[e.event]?.getTime();
    return t !== undefined && Number.isFinite(t) ? t + e.offsetMs : null;
  }
}
