/**
 * The device profile YAML format: a zod schema for its shape, plus the cross-field rules zod
 * cannot say in one place (bit needs a register function, string needs a length...). Both report
 * problems as `path.to.key: what is wrong`, paths relative to the profile document.
 * docs/profiles.md documents every key.
 */
import { z } from 'zod';
import { pointWidth, type RegisterFunction, type ValueType } from '../gateway/core/point.js';

export const REGISTER_FUNCTIONS = ['coil', 'discrete', 'holding', 'input'] as const;
export const VALUE_TYPES = ['bit', 'u16', 'i16', 'u32', 'i32', 'f32', 'f64', 'string'] as const;
export const PROFILE_KINDS = ['modbus', 'gpio', 'firmata'] as const;

const ADDRESS = z.number().int('must be a whole number').min(0, 'must be 0..65535').max(65535, 'must be 0..65535');
const endianness = z.enum(['big', 'little']);

export const PointDocSchema = z.strictObject({
  name: z.string().describe('lower_snake_case, unique within the profile'),
  function: z.enum(REGISTER_FUNCTIONS).optional().describe('Modbus table; required for modbus profiles'),
  address: ADDRESS.optional().describe(
    '0-based protocol address (datasheet 40001 = holding 0); required for modbus profiles',
  ),
  type: z.enum(VALUE_TYPES).optional().describe('required for modbus profiles; gpio/firmata default f64'),
  byteOrder: endianness.optional().describe('inside each register; default from defaults.byteOrder, else big'),
  wordOrder: endianness
    .optional()
    .describe('register order of 32/64-bit values; default from defaults.wordOrder, else big'),
  bit: z
    .number()
    .int()
    .min(0, 'must be 0..15')
    .max(15, 'must be 0..15')
    .optional()
    .describe('type bit on holding/input: which bit, 0 = LSB'),
  length: z
    .number()
    .int()
    .min(1, 'must be 1..125')
    .max(125, 'must be 1..125')
    .optional()
    .describe('type string: registers (2 ASCII characters each)'),
  scale: z.number().optional().describe('engineering = raw * scale + offset; default 1'),
  offset: z.number().optional().describe('default 0'),
  unit: z.string().optional(),
  writable: z.boolean().optional().describe('coil/holding only; default false'),
  ladder: z
    .array(z.strictObject({ raw: z.number(), value: z.number() }))
    .min(2)
    .max(64)
    .optional()
    .describe('firmata analog inputs: a resistor ladder; the raw reading maps to the value of the nearest step'),
  trigger: z
    .boolean()
    .optional()
    .describe('a write that acts each time (pulse, reset): never retried after a timeout; default false'),
  min: z.number().optional().describe('valid range, engineering units'),
  max: z.number().optional(),
  group: z.string().optional().describe('poll group name'),
  description: z.string().optional(),
});
export type PointDoc = z.infer<typeof PointDocSchema>;

const NGSI_NAME = z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'must be an NGSI-LD attribute name (letters, digits, _)');

export const NgsiLdAttributeDocSchema = z.strictObject({
  name: NGSI_NAME.optional().describe('attribute name in the model (required unless the type is DeviceMeasurement)'),
  unitCode: z
    .string()
    .regex(/^[A-Z0-9]{2,3}$/, 'must be a UN/CEFACT common code (2 or 3 capitals/digits, e.g. CEL)')
    .optional(),
  scale: z.number().optional().describe('model value = reading value × scale'),
  values: z.record(z.string(), z.string()).optional().describe('reading value (as text) → model value'),
  otherwise: z.string().optional().describe('model value for a reading not listed in values'),
  controlledProperty: z.string().min(1).optional().describe('DeviceMeasurement: what the point measures'),
});

export const NgsiLdDocSchema = z.strictObject({
  type: z.string().regex(/^[A-Z][A-Za-z0-9]*$/, 'must be a Smart Data Model entity type, e.g. AgriParcelRecord'),
  context: z.url('must be the URL of the JSON-LD context of the model'),
  observedAttribute: NGSI_NAME.optional().describe('set to the time of the newest reading (DateTime)'),
  requires: z.array(z.string()).optional().describe('points that must have a value before the entity is sent'),
  static: z
    .record(
      NGSI_NAME,
      z.union([
        z.strictObject({ value: z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]) }),
        z.strictObject({ object: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]) }),
      ]),
    )
    .optional()
    .describe(
      'attributes no point measures: {value} a Property, {object} a Relationship; {gateway}, {device} replaced',
    ),
  attributes: z.record(z.string(), NgsiLdAttributeDocSchema).describe('point name → attribute'),
});

export const ProfileDocSchema = z.strictObject({
  manufacturer: z.string().min(1, 'must not be empty'),
  model: z.string().min(1, 'must not be empty'),
  description: z.string().optional(),
  kind: z.enum(PROFILE_KINDS).optional().describe('default modbus'),
  source: z
    .strictObject({
      title: z.string().min(1, 'must name the document the map comes from'),
      url: z.url('must be a URL').optional(),
      note: z.string().optional(),
    })
    .describe('the public document the register map comes from'),
  serial: z
    .strictObject({
      baudRate: z.number().int().positive().optional(),
      parity: z.enum(['none', 'even', 'odd']).optional(),
      stopBits: z.union([z.literal(1), z.literal(2)]).optional(),
    })
    .optional(),
  maxReadRegisters: z
    .number()
    .int()
    .min(1, 'must be 1..125')
    .max(125, 'must be 1..125')
    .optional()
    .describe('default 125'),
  defaults: z.strictObject({ byteOrder: endianness.optional(), wordOrder: endianness.optional() }).optional(),
  identify: z
    .strictObject({
      function: z.enum(REGISTER_FUNCTIONS),
      address: ADDRESS,
      count: z.number().int().min(1, 'must be 1..125').max(125, 'must be 1..125'),
      min: z.number().optional(),
      max: z.number().optional(),
    })
    .optional(),
  pins: z.array(z.string()).optional().describe('gpio/firmata: pin names a device config must map'),
  optionalPins: z.array(z.string()).optional().describe('gpio/firmata: pin names a device config may map'),
  options: z
    .record(
      z.string(),
      z.strictObject({
        type: z.enum(['number', 'boolean', 'string']),
        unit: z.string().optional(),
        min: z.number().optional(),
        max: z.number().optional(),
        default: z.union([z.number(), z.boolean(), z.string()]).optional(),
        requiredWithPin: z.string().optional().describe('required when the device maps this pin'),
        description: z.string().optional(),
      }),
    )
    .optional()
    .describe('device settings a device config may give under options (e.g. loopDistance)'),
  points: z.array(PointDocSchema).min(1, 'a profile needs at least one point'),
  ngsiLd: NgsiLdDocSchema.optional().describe(
    'the FIWARE Smart Data Model a device of this profile maps to (none: generic DeviceMeasurement)',
  ),
});
export type ProfileDoc = z.infer<typeof ProfileDocSchema>;

export interface Problem {
  path: string;
  message: string;
}

const SNAKE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0;
      row[j] = Math.min(above + 1, (row[j - 1] ?? 0) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] ?? 0;
}

function knownKeys(path: readonly PropertyKey[]): string[] {
  if (path.length === 0) return Object.keys(ProfileDocSchema.shape);
  if (path[0] === 'points') return Object.keys(PointDocSchema.shape);
  if (path[0] === 'ngsiLd' && path.length === 1) return Object.keys(NgsiLdDocSchema.shape);
  if (path[0] === 'ngsiLd' && path[1] === 'attributes') return Object.keys(NgsiLdAttributeDocSchema.shape);
  return [];
}

/** zod issues -> path-named problems (unknown keys get their own path and a "did you mean"). */
export function problemsFromZod(error: z.ZodError): Problem[] {
  const out: Problem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const hint = closest(key, knownKeys(issue.path));
        out.push({
          path: [...issue.path, key].map(String).join('.'),
          message: `unknown key${hint ? ` (did you mean "${hint}"?)` : ''}`,
        });
      }
      continue;
    }
    out.push({ path: issue.path.map(String).join('.'), message: issue.message });
  }
  return out;
}

/** The rules between keys; run on a document whose shape already passed ProfileDocSchema. */
export function crossCheckProfile(doc: ProfileDoc): Problem[] {
  const problems: Problem[] = [];
  const add = (path: string, message: string) => problems.push({ path, message });
  const kind = doc.kind ?? 'modbus';
  const maxRead = doc.maxReadRegisters ?? 125;
  const seen = new Map<string, number>();

  if (kind === 'modbus') {
    if (doc.pins) add('pins', 'only gpio and firmata profiles have pins');
    if (doc.optionalPins) add('optionalPins', 'only gpio and firmata profiles have pins');
  } else {
    if ((doc.pins ?? []).length + (doc.optionalPins ?? []).length === 0)
      add('pins', `a ${kind} profile must name at least one pin (pins or optionalPins)`);
    const pinNames = new Set<string>();
    for (const [list, key] of [
      [doc.pins ?? [], 'pins'],
      [doc.optionalPins ?? [], 'optionalPins'],
    ] as const) {
      list.forEach((pin, i) => {
        if (!SNAKE.test(pin)) add(`${key}.${i}`, `"${pin}" must be lower_snake_case`);
        if (pinNames.has(pin)) add(`${key}.${i}`, `pin "${pin}" is listed twice`);
        pinNames.add(pin);
      });
    }
  }
  if (
    doc.identify &&
    doc.identify.min !== undefined &&
    doc.identify.max !== undefined &&
    doc.identify.min > doc.identify.max
  ) {
    add('identify.min', `min ${doc.identify.min} is greater than max ${doc.identify.max}`);
  }

  doc.points.forEach((p, i) => {
    const at = (key: string) => `points.${i}.${key}`;
    if (!SNAKE.test(p.name))
      add(at('name'), `"${p.name}" must be lower_snake_case (a-z, 0-9, _ ; starting with a letter)`);
    const first = seen.get(p.name);
    if (first !== undefined) add(at('name'), `"${p.name}" is already the name of points.${first}`);
    else seen.set(p.name, i);

    if (p.min !== undefined && p.max !== undefined && p.min > p.max)
      add(at('min'), `min ${p.min} is greater than max ${p.max}`);
    if (p.scale === 0) add(at('scale'), 'must not be 0');

    if (kind === 'firmata') {
      // a firmata point is the pin of the same name; its function says what the pin is
      const allPins = [...(doc.pins ?? []), ...(doc.optionalPins ?? [])];
      if (!allPins.includes(p.name))
        add(
          at('name'),
          `"${p.name}" must also be a pin name (pins or optionalPins): a firmata point reads the pin of its name`,
        );
      if (p.function !== undefined && !['input', 'discrete', 'coil'].includes(p.function))
        add(
          at('function'),
          'on a firmata board must be input (analog channel), discrete (digital input) or coil (digital output)',
        );
      if (p.writable && p.function !== 'coil') add(at('writable'), 'only coil (digital output) points can be written');
    }
    if (p.ladder && (kind !== 'firmata' || p.function !== 'input'))
      add(at('ladder'), 'only firmata analog inputs (function: input) read a resistor ladder');
    if (kind !== 'modbus') return; // gpio/firmata points are computed by the driver; register fields carry no meaning

    if (p.function === undefined) add(at('function'), 'is required (coil, discrete, holding or input)');
    if (p.address === undefined) add(at('address'), 'is required (0-based protocol address)');
    if (p.type === undefined) add(at('type'), `is required (${VALUE_TYPES.join(', ')})`);
    if (p.function === undefined || p.type === undefined) return;

    const bitTable = p.function === 'coil' || p.function === 'discrete';
    if (bitTable && p.type !== 'bit') add(at('type'), `must be bit on a ${p.function} (got ${p.type})`);
    if (p.type === 'bit' && !bitTable && p.bit === undefined)
      add(at('bit'), `is required for type bit on a ${p.function} register (0..15)`);
    if (p.bit !== undefined && (p.type !== 'bit' || bitTable))
      add(at('bit'), 'only applies to type bit on a holding or input register');
    if (p.type === 'string' && p.length === undefined)
      add(at('length'), 'is required for type string (registers, 2 characters each)');
    if (p.length !== undefined && p.type !== 'string') add(at('length'), 'only applies to type string');
    if (p.writable && p.function !== 'coil' && p.function !== 'holding')
      add(at('writable'), `a ${p.function} cannot be written (only coil and holding)`);

    const width = pointWidth({ function: p.function as RegisterFunction, type: p.type as ValueType, length: p.length });
    if (p.address !== undefined && p.address + width - 1 > 65535)
      add(at('address'), `${p.address} + ${width} registers runs past 65535`);
    if (!bitTable && width > maxRead)
      add(
        at(p.type === 'string' ? 'length' : 'type'),
        `is ${width} registers wide, more than maxReadRegisters (${maxRead})`,
      );
  });
  if (doc.ngsiLd) checkNgsiLd(doc.ngsiLd, new Set(doc.points.map((p) => p.name)), add);
  return problems;
}

/** The `ngsiLd` block names points of this profile, and the attribute shape its type needs. */
function checkNgsiLd(m: NonNullable<ProfileDoc['ngsiLd']>, points: Set<string>, add: (p: string, m: string) => void) {
  const perPoint = m.type === 'DeviceMeasurement';
  const names = new Map<string, string>();
  for (const [point, a] of Object.entries(m.attributes)) {
    const at = `ngsiLd.attributes.${point}`;
    if (!points.has(point)) add(at, `"${point}" is not a point of this profile`);
    if (!perPoint && a.name === undefined) add(`${at}.name`, `is required for type ${m.type}`);
    if (perPoint && a.name !== undefined) add(`${at}.name`, 'DeviceMeasurement puts every value in numValue: no name');
    if (a.name !== undefined) {
      const first = names.get(a.name);
      if (first) add(`${at}.name`, `"${a.name}" is already fed by point ${first}`);
      else names.set(a.name, point);
      if (m.static?.[a.name]) add(`${at}.name`, `"${a.name}" is also a static attribute`);
    }
    if (a.otherwise !== undefined && a.values === undefined) add(`${at}.otherwise`, 'only applies with values');
  }
  (m.requires ?? []).forEach((p, i) => {
    if (!(p in m.attributes)) add(`ngsiLd.requires.${i}`, `"${p}" is not one of ngsiLd.attributes`);
  });
}

/** JSON Schema of the profile document (shape only; crossCheckProfile adds the rules between keys). */
export function profileJsonSchema(): object {
  return z.toJSONSchema(ProfileDocSchema, { io: 'input' });
}
