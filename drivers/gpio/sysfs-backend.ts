import { performance } from 'node:perf_hooks';
import { describeError, LangbiangError } from '../../gateway/core/errors.js';
import { headerChipLabels } from '../../hardware/boards.js';
import type { GpioBackend, InputOptions, OutputPin, WatchedInput } from './backend.js';
import type { Level } from './bounce-filter.js';
import { type GpioChipInfo, resolveGpioChip, sysfsNumber } from './chip.js';

type OnoffGpio = import('onoff').Gpio;

/**
 * GPIO through the kernel's sysfs interface with onoff (loaded only when a gpio bus uses it).
 * Pins are BCM line numbers; the kernel number is the header chip's base + pin (see chip.ts).
 * onoff's debounceTimeout is never used: it is a trailing debounce that merges close vehicles;
 * the driver filters bounce on the timestamps taken here.
 */
export class SysfsGpioBackend implements GpioBackend {
  readonly kind = 'sysfs' as const;
  private readonly open = new Set<OnoffGpio>();

  private constructor(
    readonly chip: GpioChipInfo,
    private readonly Gpio: typeof import('onoff').Gpio,
  ) {}

  static async create(opts: { chip?: string | number; root?: string } = {}): Promise<SysfsGpioBackend> {
    const chip = resolveGpioChip({ ...opts, headerLabels: headerChipLabels() });
    const { Gpio } = await import('onoff');
    if (!Gpio.accessible)
      throw new LangbiangError(
        'GPIO_UNAVAILABLE',
        `GPIO is not accessible here (no /sys/class/gpio export, or no permission: add the user to the gpio group)`,
      );
    return new SysfsGpioBackend(chip, Gpio);
  }

  now(): number {
    return performance.now();
  }

  private make(
    pin: number,
    direction: 'in' | 'out' | 'high' | 'low',
    edge: 'none' | 'both',
    activeLow?: boolean,
  ): OnoffGpio {
    const n = sysfsNumber(this.chip, pin);
    try {
      const g = new this.Gpio(n, direction, edge, { activeLow: activeLow ?? false });
      this.open.add(g);
      return g;
    } catch (err) {
      throw new LangbiangError(
        'GPIO_UNAVAILABLE',
        `cannot export GPIO ${pin} (sysfs ${n} on ${this.chip.label}): ${describeError(err)}`,
        { pin, sysfs: n },
        { cause: err },
      );
    }
  }

  async watch(
    pin: number,
    onEdge: (e: { level: Level; t: number }) => void,
    opts: InputOptions = {},
  ): Promise<WatchedInput> {
    const g = this.make(pin, 'in', 'both', opts.activeLow);
    g.watch((err, value) => {
      // stamp first: the callback is the closest we get to the interrupt
      const t = performance.now();
      if (!err) onEdge({ level: value as Level, t });
    });
    return {
      pin,
      read: async () => (await g.read()) as Level,
      close: async () => this.release(g),
    };
  }

  async output(pin: number, initial: Level = 0): Promise<OutputPin> {
    const g = this.make(pin, initial ? 'high' : 'low', 'none');
    return {
      pin,
      write: async (level) => g.write(level),
      read: async () => (await g.read()) as Level,
      close: async () => this.release(g),
    };
  }

  private release(g: OnoffGpio): void {
    if (!this.open.delete(g)) return;
    g.unwatchAll();
    g.unexport();
  }

  async close(): Promise<void> {
    for (const g of [...this.open]) this.release(g);
  }
}
