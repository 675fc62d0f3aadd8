import type { StatusMessage } from './protocol/status.js';

export interface StatusPacerOptions {
  /** while behind (a backlog, or confirmation lagging): a status this often, so the city sees progress */
  busyIntervalMs: number;
  /** otherwise a status at least this often, even when nothing changed */
  heartbeatMs: number;
  /** a reading waiting longer than this for the broker: the gateway is behind in sending */
  sendLateMs: number;
  /** a reading waiting longer than this for the city's confirmation: behind in confirmation */
  confirmLateMs: number;
}

/**
 * When the retained status is worth its bytes. Its counters move with every batch, so "changed"
 * means a change the city acts on: the state, the store epoch or software version, an update's
 * outcome (a release confirmed, rolled back), the confirmation mode, a backlog or a confirmation lag that starts or ends, a resend. Between those,
 * a heartbeat; while the gateway is behind, a status every busy interval (the drain's progress).
 * The last will tells the city when a gateway is gone, so silence is not needed as a sign of life.
 */
export class StatusPacer {
  private lastKey: string | null = null;
  private lastAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: StatusPacerOptions) {}

  /** What about a status makes it worth publishing again at once when it changes. */
  key(s: StatusMessage, resends: number): string {
    return [
      s.state,
      s.epoch,
      s.version ?? '',
      s.confirm ?? '',
      // a release confirming itself or rolled back: a city roll-out waits for exactly this
      s.update?.pending?.version ?? '',
      s.update?.last ? `${s.update.last.outcome}:${s.update.last.version}@${s.update.last.at}` : '',
      this.sendBehind(s) ? 'send-behind' : '',
      this.confirmBehind(s) ? 'confirm-behind' : '',
      resends,
    ].join('|');
  }

  private sendBehind(s: StatusMessage): boolean {
    return s.oldestUnsentAgeS != null && s.oldestUnsentAgeS * 1000 > this.o.sendLateMs;
  }

  private confirmBehind(s: StatusMessage): boolean {
    return s.oldestUnconfirmedAgeS != null && s.oldestUnconfirmedAgeS * 1000 > this.o.confirmLateMs;
  }

  /** Whether to publish `s` now (mono ms). */
  due(now: number, s: StatusMessage, resends: number): boolean {
    const key = this.key(s, resends);
    if (key !== this.lastKey) return true;
    const behind = this.sendBehind(s) || this.confirmBehind(s);
    return now - this.lastAt >= (behind ? this.o.busyIntervalMs : this.o.heartbeatMs);
  }

  /** `s` was published at `now`. */
  published(now: number, s: StatusMessage, resends: number): void {
    this.lastKey = this.key(s, resends);
    this.lastAt = now;
  }

  /** A new connection: the first status goes at once whatever it says. */
  reset(): void {
    this.lastKey = null;
    this.lastAt = Number.NEGATIVE_INFINITY;
  }
}
