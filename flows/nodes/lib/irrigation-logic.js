/**
 * The irrigation decision with its safety limits, free of Node-RED and of wall time (every call
 * takes `now`), so it is unit-tested as is. The valve opens only on fresh, good readings that
 * stayed below the threshold for `dryForMs`; it closes when moisture recovers, after
 * `maxOpenMs`, when the rolling budget (`budgetMs` of open time per `windowMs`) is used up, and
 * whenever the sensor fails or goes stale. The time limits hold whatever the sensor does: they
 * run on `tick`, not on readings.
 */
class IrrigationController {
  constructor(p, now) {
    const need = (name, ok) => {
      if (!ok) throw new Error(`irrigation: ${name} is not valid (${JSON.stringify(p[name])})`);
    };
    need('threshold', Number.isFinite(p.threshold));
    need('recoverAt', Number.isFinite(p.recoverAt) && p.recoverAt >= p.threshold);
    need('dryForMs', Number.isFinite(p.dryForMs) && p.dryForMs >= 0);
    need('maxOpenMs', Number.isFinite(p.maxOpenMs) && p.maxOpenMs > 0);
    need('budgetMs', Number.isFinite(p.budgetMs) && p.budgetMs > 0);
    need('windowMs', Number.isFinite(p.windowMs) && p.windowMs >= p.budgetMs);
    need('staleAfterMs', Number.isFinite(p.staleAfterMs) && p.staleAfterMs > 0);
    // A run shorter than this is not worth opening the valve for (the budget's last scraps would
    // otherwise give sub-second pulses that wear the valve and wet nothing).
    const minRunMs = p.minRunMs ?? Math.min(p.maxOpenMs / 4, 60_000);
    need('minRunMs', Number.isFinite(minRunMs) && minRunMs >= 0 && minRunMs <= p.maxOpenMs);
    this.p = { ...p, minRunMs };
    this.startedAt = now;
    this.open = false;
    this.openedAt = null;
    this.dryStart = null;
    this.lastGoodAt = null;
    this.lastValue = null;
    /** null, 'offline' (the gateway gave the device up) or 'stale' (no good reading for staleAfterMs) */
    this.fault = null;
    /** closed [start, end] open intervals still inside the window */
    this.intervals = [];
  }

  /** A reading of the moisture point. Returns an action ({ open, reason }) or null. */
  reading(value, quality, now) {
    if (quality !== 'good' || typeof value !== 'number' || !Number.isFinite(value)) {
      // one lost frame on RS-485 is normal; a device the gateway has given up on is not
      if (quality === 'device_offline') return this.setFault('offline', now);
      return this.evaluate(now);
    }
    this.lastGoodAt = now;
    this.lastValue = value;
    this.fault = null;
    if (value < this.p.threshold) {
      if (this.dryStart === null) this.dryStart = now;
    } else {
      this.dryStart = null;
    }
    if (this.open && value >= this.p.recoverAt) return this.close(now, 'recovered');
    return this.evaluate(now);
  }

  /** Called every second or so: the time limits and staleness live here. */
  tick(now) {
    const since = this.lastGoodAt ?? this.startedAt;
    if (now - since > this.p.staleAfterMs) {
      const a = this.setFault('stale', now);
      if (a) return a;
    }
    return this.evaluate(now);
  }

  /** Open time used inside the rolling window ending now, ms. */
  used(now) {
    const from = now - this.p.windowMs;
    this.intervals = this.intervals.filter(([, end]) => end > from);
    let total = 0;
    for (const [start, end] of this.intervals) total += end - Math.max(start, from);
    if (this.open) total += now - Math.max(this.openedAt, from);
    return total;
  }

  state(now) {
    return {
      open: this.open,
      fault: this.fault,
      lastValue: this.lastValue,
      usedMs: this.used(now),
      budgetMs: this.p.budgetMs,
      dryForMs: this.dryStart === null ? 0 : now - this.dryStart,
    };
  }

  setFault(kind, now) {
    this.fault = kind;
    this.dryStart = null;
    return this.open ? this.close(now, kind === 'stale' ? 'sensor-stale' : 'sensor-offline') : null;
  }

  evaluate(now) {
    if (this.open) {
      if (now - this.openedAt >= this.p.maxOpenMs) {
        // soak: the water needs time to reach the probe before the next run is judged
        const a = this.close(now, 'max-duration');
        if (this.lastValue !== null && this.lastValue < this.p.threshold) this.dryStart = now;
        return a;
      }
      if (this.used(now) >= this.p.budgetMs) return this.close(now, 'budget');
      return null;
    }
    if (this.fault || this.dryStart === null || this.lastGoodAt === null) return null;
    if (now - this.lastGoodAt > this.p.staleAfterMs) return null;
    if (now - this.dryStart < this.p.dryForMs) return null;
    if (this.p.budgetMs - this.used(now) < this.p.minRunMs) return null;
    this.open = true;
    this.openedAt = now;
    return { open: true, reason: 'dry' };
  }

  close(now, reason) {
    if (!this.open) return null;
    this.intervals.push([this.openedAt, now]);
    this.open = false;
    this.openedAt = null;
    return { open: false, reason };
  }
}

module.exports = { IrrigationController };
