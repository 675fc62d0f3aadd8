import type { CommandExecutor } from './core/command.js';
import { describeError } from './core/errors.js';
import type { Reading } from './core/reading.js';

export interface ParkingSign {
  /** the parking-counter device whose free spaces are shown */
  carPark: string;
  /** the sign (e.g. an rs485-led-display-4digit) and its number point */
  device: string;
  point: string;
}

/**
 * Free-spaces signs (`parkingSigns:`): each good `free_spaces` reading of a car park that differs
 * from what its sign last showed is written to the sign through the command router (validated,
 * queued on the sign's bus, audited). A failed write is tried again at the next reading.
 */
export class ParkingSigns {
  private readonly byCarPark = new Map<string, Array<ParkingSign & { shown?: number; writing: boolean }>>();
  private seq = 0;

  constructor(
    signs: readonly ParkingSign[],
    private readonly executor: CommandExecutor,
    private readonly onError: (sign: ParkingSign, message: string) => void,
  ) {
    for (const s of signs) {
      const list = this.byCarPark.get(s.carPark) ?? [];
      list.push({ ...s, writing: false });
      this.byCarPark.set(s.carPark, list);
    }
  }

  onReadings(readings: readonly Reading[]): void {
    for (const r of readings) {
      if (r.point !== 'free_spaces' || r.quality !== 'good' || typeof r.value !== 'number') continue;
      for (const sign of this.byCarPark.get(r.device) ?? []) {
        const value = r.value;
        if (sign.writing || sign.shown === value) continue;
        sign.writing = true;
        this.executor
          .execute({
            id: `parking-sign-${sign.device}-${r.ts}-${++this.seq}`,
            device: sign.device,
            point: sign.point,
            value,
            source: 'schedule',
            actor: `parking-sign:${sign.carPark}`,
          })
          .then(
            (res) => {
              sign.writing = false;
              if (res.ok) sign.shown = value;
              else this.onError(sign, res.message ?? res.code ?? 'refused');
            },
            (err) => {
              sign.writing = false;
              this.onError(sign, describeError(err));
            },
          );
      }
    }
  }
}
