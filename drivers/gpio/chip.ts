import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LangbiangError } from '../../gateway/core/errors.js';

/**
 * Finds the GPIO chip that carries the board's header pins and its sysfs base, so BCM pin N is
 * exported as base + N. The base is not 0 on current kernels: since 6.6 Raspberry Pi OS numbers
 * the Pi 4's pinctrl-bcm2711 lines from 512, and the Pi 5's header sits on the RP1 chip
 * (pinctrl-rp1) at yet another base. Assuming BCM numbers exports the wrong line or fails.
 */
export interface GpioChipInfo {
  /** sysfs directory name, e.g. gpiochip512 */
  name: string;
  base: number;
  ngpio: number;
  label: string;
}

export const DEFAULT_SYSFS_ROOT = '/sys/class/gpio';

export function listGpioChips(root = DEFAULT_SYSFS_ROOT): GpioChipInfo[] {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch (err) {
    throw new LangbiangError(
      'GPIO_UNAVAILABLE',
      `cannot read ${root} (${(err as NodeJS.ErrnoException).code ?? String(err)}): this kernel has no sysfs GPIO interface, or this is not the board`,
      { root },
    );
  }
  const chips: GpioChipInfo[] = [];
  for (const name of entries.filter((e) => /^gpiochip\d+$/.test(e))) {
    const read = (f: string) => readFileSync(join(root, name, f), 'utf8').trim();
    try {
      chips.push({
        name,
        base: Number.parseInt(read('base'), 10),
        ngpio: Number.parseInt(read('ngpio'), 10),
        label: read('label'),
      });
    } catch {
      // a chip that vanished between readdir and read (hot-unplugged expander) is not ours
    }
  }
  return chips.sort((x, y) => x.base - y.base);
}

/**
 * The header chip. `chip` (from the bus config) may be a label (`pinctrl-rp1`), a sysfs name
 * (`gpiochip571`) or a number (the base). Without it, the first chip whose label is one of
 * `headerLabels` (from hardware/boards) wins.
 */
export function resolveGpioChip(opts: {
  root?: string;
  chip?: string | number;
  headerLabels: readonly string[];
}): GpioChipInfo {
  const root = opts.root ?? DEFAULT_SYSFS_ROOT;
  const chips = listGpioChips(root);
  const found = chips.map((c) => `${c.name} (${c.label}, base ${c.base}, ${c.ngpio} lines)`).join('; ') || 'none';
  let chip: GpioChipInfo | undefined;
  if (opts.chip !== undefined) {
    const want = opts.chip;
    chip = chips.find((c) => (typeof want === 'number' ? c.base === want : c.label === want || c.name === want));
    if (!chip)
      throw new LangbiangError(
        'GPIO_UNAVAILABLE',
        `GPIO chip ${JSON.stringify(want)} not found in ${root}; chips: ${found}`,
      );
  } else {
    for (const label of opts.headerLabels) {
      chip = chips.find((c) => c.label === label);
      if (chip) break;
    }
    if (!chip)
      throw new LangbiangError(
        'GPIO_UNAVAILABLE',
        `no GPIO chip with a known header label (${opts.headerLabels.join(', ')}) in ${root}; chips: ${found}. Set the bus's chip.`,
      );
  }
  return chip;
}

/** Kernel (sysfs) number of a line of the chip; rejects lines the chip does not have. */
export function sysfsNumber(chip: GpioChipInfo, pin: number): number {
  if (!Number.isInteger(pin) || pin < 0 || pin >= chip.ngpio)
    throw new LangbiangError(
      'GPIO_UNAVAILABLE',
      `pin ${pin} is not a line of ${chip.label} (${chip.ngpio} lines, 0–${chip.ngpio - 1})`,
    );
  return chip.base + pin;
}
