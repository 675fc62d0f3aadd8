/**
 * Board definitions (hardware/boards/*.yaml): which GPIO chip carries the header, the header's
 * physical-pin → BCM map, and serial device names. Data, each file citing its sources.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { LangbiangError } from '../gateway/core/errors.js';
import { builtinProfilesDir } from './profiles.js';

const BoardSchema = z.strictObject({
  name: z.string(),
  model: z.string(),
  soc: z.string(),
  gpio: z.strictObject({
    label: z.string(),
    ngpio: z.number().int().positive(),
    bases: z.array(z.strictObject({ kernel: z.string(), base: z.number().int().min(0) })),
  }),
  header: z.record(z.string(), z.number().int().min(0)),
  serial: z.array(z.strictObject({ device: z.string(), note: z.string() })),
  sources: z.array(z.strictObject({ title: z.string(), url: z.url() })).min(1),
});
export type BoardDef = z.infer<typeof BoardSchema>;

export function boardsDir(): string {
  return join(builtinProfilesDir(), '..', 'boards');
}

export function loadBoards(dir = boardsDir()): BoardDef[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const parsed = BoardSchema.safeParse(parse(readFileSync(join(dir, f), 'utf8')));
      if (!parsed.success)
        throw new LangbiangError(
          'INTERNAL',
          `board file ${f} is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
        );
      return parsed.data;
    });
}

/** Labels of the chips that carry a header, newest boards first; pinctrl-bcm2835 covers Pi 1–3 and Zero. */
export function headerChipLabels(dir?: string): string[] {
  const labels = loadBoards(dir).map((b) => b.gpio.label);
  return [...new Set(['pinctrl-rp1', ...labels, 'pinctrl-bcm2835'])];
}
