import { z } from 'zod';
import { parseTimeExpr } from '../cabinet/time-expr.js';
import { describeError } from '../core/errors.js';
import { describeValue } from './problems.js';
import { DURATION_PATTERN, parseDuration } from './units.js';

/**
 * The `cabinets:` section: streetlight cabinets that switch and dim their lamps on a schedule
 * computed from the gateway's location and time zone. The schedule part is also what a city
 * `schedule` command carries, so both are checked by the same schema.
 */

const timeExpr = (description: string, example: string) =>
  z
    .string({ error: (iss) => `expected a time like 23:00, sunset or sunrise-30m, got ${describeValue(iss.input)}` })
    .superRefine((text, ctx) => {
      try {
        parseTimeExpr(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: describeError(err) });
      }
    })
    .meta({
      description,
      pattern: String.raw`^\s*((sunset|sunrise)(\s*[+-]\s*\d+(\.\d+)?\s*(s|m|min|h))?|([01]?\d|2[0-3]):[0-5]\d)\s*$`,
      examples: [example],
    });

const percent = (description: string) =>
  z
    .number({ error: (iss) => `expected a light level in % (0–100), got ${describeValue(iss.input)}` })
    .min(0)
    .max(100)
    .meta({ description });

export const scheduleSchema = z
  .strictObject({
    on: timeExpr('When the lamps come on: sunset, sunset±offset, or HH:MM local time.', 'sunset+10m').default('sunset'),
    off: timeExpr('When the lamps go off: sunrise, sunrise±offset, or HH:MM local time.', 'sunrise-10m').default(
      'sunrise',
    ),
    level: percent('Light level (%) when the lamps come on.').default(100),
    steps: z
      .array(
        z.strictObject({
          at: timeExpr('When this step starts (HH:MM local time, or relative to sunset/sunrise).', '23:00'),
          level: percent('Light level (%) from this time; 0 switches the lamps off until the next step.'),
        }),
      )
      .max(24)
      .default([])
      .meta({ description: 'Dimming steps through the night, e.g. 50 % after 23:00 and 100 % from 04:30.' }),
  })
  .meta({ description: 'On at sunset, off at sunrise, dimming steps between; run from the gateway clock.' });

const settle = z
  .union([z.string(), z.number()], {
    error: (iss) => `expected a duration like 2m, got ${describeValue(iss.input)}`,
  })
  .transform((input, ctx) => {
    try {
      return parseDuration(input);
    } catch (err) {
      ctx.issues.push({ code: 'custom', input, message: describeError(err) });
      return z.NEVER;
    }
  })
  .meta({
    description: 'How long after a switch the feeder current is not judged (lamps warming up, meter catching up).',
    pattern: DURATION_PATTERN,
    examples: ['2m'],
  });

const pointRef = (what: string, defaultPoint?: string) =>
  z
    .strictObject({
      device: z
        .string()
        .min(1)
        .meta({ description: `Id of the ${what} device (from devices:).` }),
      point: defaultPoint
        ? z
            .string()
            .min(1)
            .default(defaultPoint)
            .meta({ description: `Point of the ${what} (default ${defaultPoint}).` })
        : z
            .string()
            .min(1)
            .meta({ description: `Point of the ${what}.` }),
    })
    .meta({ description: `The ${what}.` });

export const cabinetSchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
        error: (iss) => `${describeValue(iss.input)} is not a valid cabinet id (letters, digits, '.', '-', '_')`,
      })
      .meta({ description: 'Cabinet id; commands address it like a device (points schedule, override).' }),
    name: z.string().min(1).optional().meta({ description: 'Human name (street, district).' }),
    dimmer: pointRef('dimmer (e.g. an ecodim-dali-gw2 broadcast level, or one group_N)', 'brightness').extend({
      curve: z.enum(['dali', 'linear']).default('dali').meta({
        description:
          'dali: % of light on the logarithmic DALI arc scale (50 % = level 229); linear: % of the point range.',
      }),
    }),
    contactor: pointRef(
      'contactor relay (switched on before the lamps are lit, off after they are dimmed to 0)',
    ).optional(),
    meter: pointRef('feeder energy meter current', 'current').optional(),
    schedule: scheduleSchema.prefault({}),
    feeder: z
      .strictObject({
        minCurrentA: z.number().min(0).optional().meta({
          description:
            'While the lamps are on: less current than this raises feeder_no_current (broken feeder, tripped breaker).',
        }),
        maxCurrentA: z.number().positive().optional().meta({
          description: 'While the lamps are on: more current than this raises feeder_overcurrent.',
        }),
        offMaxCurrentA: z.number().min(0).default(0.5).meta({
          description:
            'While the lamps are off: more current than this raises feeder_current_while_off (stuck contactor, theft).',
        }),
        settle: settle.prefault('2m'),
      })
      .prefault({})
      .meta({ description: 'Expected feeder current, checked against the meter for the scheduled state.' }),
  })
  .meta({ title: 'Streetlight cabinet', description: 'A lamp cabinet: DALI dimmer, optional contactor and meter.' });

export type CabinetConfig = z.output<typeof cabinetSchema>;
export type ScheduleConfig = z.output<typeof scheduleSchema>;
