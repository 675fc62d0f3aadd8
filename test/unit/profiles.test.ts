import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { LangbiangError } from '../../gateway/core/errors.js';
import { type DeviceProfile, pointWidth } from '../../gateway/core/point.js';
import { profileJsonSchema } from '../../hardware/profile-schema.js';
import {
  builtinProfilesDir,
  loadProfile,
  loadProfileFile,
  loadProfiles,
  parseProfile,
} from '../../hardware/profiles.js';

const tmp = mkdtempSync(join(tmpdir(), 'langbiang-profiles-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// mutations of parsed YAML reach into arbitrary keys on purpose
// biome-ignore lint/suspicious/noExplicitAny: test documents are untyped YAML
type Doc = any;

function problemsOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LangbiangError);
    expect((err as LangbiangError).code).toBe('PROFILE_INVALID');
    return (err as LangbiangError).details?.problems as { path: string; message: string }[];
  }
  throw new Error('expected PROFILE_INVALID');
}

const SOIL = {
  moisture: '%',
  temperature: '°C',
  ec: 'µS/cm',
  ph: undefined,
  nitrogen: 'mg/kg',
  phosphorus: 'mg/kg',
  potassium: 'mg/kg',
};
const METER_TOTALS = {
  active_power: 'W',
  apparent_power: 'VA',
  reactive_power: 'var',
  power_factor: undefined,
  frequency: 'Hz',
  import_energy: 'kWh',
  export_energy: 'kWh',
  total_energy: 'kWh',
};

/** The DESIGN table of shipped profiles: name -> required points and their units (undefined = dimensionless). */
const REQUIRED: Record<string, Record<string, string | undefined>> = {
  'comwintop-cwt-soil': SOIL,
  'jxct-jxbs-3001': SOIL,
  'xy-md02': { temperature: '°C', humidity: '%RH' },
  // issue 15: the environment station
  'rs485-level-transmitter': { water_level: 'cm' },
  'deltaohm-pmsense': { pm25: 'µg/m³', pm10: 'µg/m³' },
  'renke-rs-fs-n01': { wind_speed: 'm/s' },
  'renke-rs-fx-n01': { wind_direction: '°' },
  'sparkfun-sen-15901-vane': { wind_direction: '°' },
  'parking-counter': { occupancy: 'veh', free_spaces: 'veh' },
  'rs485-led-display-4digit': { display_value: undefined },
  'sparkfun-sen-15901': { precipitation: 'mm', rain_today: 'mm', wind_speed: 'km/h', wind_gust: 'km/h' },
  'eastron-sdm120': { voltage: 'V', current: 'A', ...METER_TOTALS },
  'eastron-sdm630': {
    ...Object.fromEntries(
      [1, 2, 3].flatMap((l) => [
        [`voltage_l${l}`, 'V'],
        [`current_l${l}`, 'A'],
        [`active_power_l${l}`, 'W'],
      ]),
    ),
    ...METER_TOTALS,
  },
  'ecodim-dali-gw2': {
    brightness: undefined,
    group_0: undefined,
    group_15: undefined,
    lamp_0: undefined,
    lamp_63: undefined,
  },
  'waveshare-modbus-rtu-relay-8ch': Object.fromEntries(
    Array.from({ length: 8 }, (_, i) => [`relay_${i + 1}`, undefined]),
  ),
  'loop-detector': { intensity: 'veh', occupancy: undefined, average_speed: 'km/h' },
  'arduino-standardfirmata': { soil_1: undefined, switch_1: undefined, relay_1: undefined },
};

describe('shipped profiles', () => {
  const profiles = loadProfiles();

  it('all load, and the directory is found from the source tree', () => {
    expect(builtinProfilesDir()).toMatch(/hardware[\\/]profiles$/);
    expect([...profiles.keys()].sort()).toEqual(Object.keys(REQUIRED).sort());
  });

  it.each(Object.entries(REQUIRED))('%s has the DESIGN points with their units', (name, points) => {
    const profile = profiles.get(name) as DeviceProfile;
    expect(profile, name).toBeDefined();
    for (const [point, unit] of Object.entries(points)) {
      const def = profile.points.find((p) => p.name === point);
      expect(def, `${name}.${point}`).toBeDefined();
      expect(def?.unit, `${name}.${point} unit`).toBe(unit);
    }
  });

  it.each([...loadProfiles().values()].map((p) => [p.name, p] as const))(
    '%s cites its source and names its bus defaults',
    (name, profile) => {
      expect(profile.source.title.length).toBeGreaterThan(10);
      expect(profile.source.url).toMatch(/^https?:\/\//);
      const text = readFileSync(join(builtinProfilesDir(), `${name}.yaml`), 'utf8');
      expect(text.startsWith('#'), 'header comment').toBe(true);
      if (profile.kind === 'modbus') {
        expect(profile.serial?.baudRate).toBeGreaterThan(0);
        expect(profile.serial?.parity).toBeDefined();
      }
    },
  );

  it('applies defaults and keeps the documented encodings', () => {
    const cwt = profiles.get('comwintop-cwt-soil') as DeviceProfile;
    const temperature = cwt.points.find((p) => p.name === 'temperature');
    expect(temperature).toMatchObject({
      function: 'holding',
      address: 1,
      type: 'i16',
      scale: 0.1,
      offset: 0,
      byteOrder: 'big',
      wordOrder: 'big',
      writable: false,
    });
    expect(cwt.kind).toBe('modbus');

    const jx = profiles.get('jxct-jxbs-3001') as DeviceProfile;
    expect(Object.fromEntries(jx.points.map((p) => [p.name, p.address]))).toEqual({
      ph: 0x06,
      moisture: 0x12,
      temperature: 0x13,
      ec: 0x15,
      nitrogen: 0x1e,
      phosphorus: 0x1f,
      potassium: 0x20,
    });

    const sdm120 = profiles.get('eastron-sdm120') as DeviceProfile;
    const at = (n: string) => sdm120.points.find((p) => p.name === n);
    expect([at('voltage')?.address, at('frequency')?.address, at('total_energy')?.address]).toEqual([
      0x0000, 0x0046, 0x0156,
    ]);
    expect(sdm120.points.every((p) => p.type === 'f32' && p.function === 'input')).toBe(true);

    const md02 = profiles.get('xy-md02') as DeviceProfile;
    expect(md02.points.find((p) => p.name === 'humidity')).toMatchObject({ function: 'input', address: 2, scale: 0.1 });

    const dali = profiles.get('ecodim-dali-gw2') as DeviceProfile;
    expect(dali.points.find((p) => p.name === 'brightness')).toMatchObject({
      writable: true,
      min: 0,
      max: 254,
      address: 1000,
    });
    expect(dali.points.find((p) => p.name === 'group_3')).toMatchObject({ writable: true, address: 2015 });
    expect(dali.points.find((p) => p.name === 'lamp_2_failure')).toMatchObject({ type: 'bit', bit: 1, address: 3013 });

    const relays = profiles.get('waveshare-modbus-rtu-relay-8ch') as DeviceProfile;
    expect(relays.points.map((p) => [p.function, p.address, p.writable])).toEqual(
      Array.from({ length: 8 }, (_, i) => ['coil', i, true]),
    );
  });

  it('the loop detector is a gpio profile with pins and no register fields', () => {
    const loop = profiles.get('loop-detector') as DeviceProfile;
    expect(loop.kind).toBe('gpio');
    expect(loop.pins).toEqual(['presence']);
    expect(loop.optionalPins).toEqual(['presence_b']);
    expect(loop.points.find((p) => p.name === 'occupancy')).toMatchObject({ min: 0, max: 1 });
  });

  it('every Modbus point fits the model read limit and the address space', () => {
    for (const p of profiles.values()) {
      for (const pt of p.points) {
        expect(pt.address + pointWidth(pt) - 1).toBeLessThanOrEqual(65535);
        if (pt.function === 'holding' || pt.function === 'input')
          expect(pointWidth(pt)).toBeLessThanOrEqual(p.maxReadRegisters);
      }
    }
  });
});

describe('finding profiles', () => {
  it('loadProfile by name, with close names when missing', () => {
    expect(loadProfile('xy-md02').model).toMatch(/XY-MD02/);
    try {
      loadProfile('eastron-sdm12');
      throw new Error('expected PROFILE_NOT_FOUND');
    } catch (err) {
      expect((err as LangbiangError).code).toBe('PROFILE_NOT_FOUND');
      expect((err as LangbiangError).message).toMatch(/eastron-sdm120/);
    }
    expect(() => loadProfile('../etc/passwd')).toThrow(LangbiangError);
  });

  it('extra directories add models and override shipped ones', () => {
    const dir = join(tmp, 'site');
    rmSync(dir, { recursive: true, force: true });
    const base = readFileSync(join(builtinProfilesDir(), 'xy-md02.yaml'), 'utf8');
    mkdirSync(dir);
    writeFileSync(join(dir, 'xy-md02.yaml'), base.replace('model: XY-MD02 (SHT20)', 'model: XY-MD02 site variant'));
    writeFileSync(
      join(dir, 'my-sensor.yml'),
      'manufacturer: Acme\nmodel: T1\nsource: { title: Acme T1 datasheet rev 2 }\npoints:\n  - { name: temperature, function: input, address: 0, type: i16, scale: 0.01, unit: "°C" }\n',
    );
    const all = loadProfiles([dir]);
    expect(all.get('xy-md02')?.model).toBe('XY-MD02 site variant');
    expect(all.get('my-sensor')?.points[0]?.scale).toBe(0.01);
    expect(loadProfile('my-sensor', [dir]).manufacturer).toBe('Acme');
    expect(loadProfile('xy-md02', [dir]).model).toBe('XY-MD02 site variant');
    expect(() => loadProfiles([join(tmp, 'missing-dir')])).toThrow(/does not exist/);
  });
});

describe('broken profiles give path-named problems', () => {
  const good = () =>
    parse(`
manufacturer: Acme
model: M1
source: { title: Acme M1 manual }
points:
  - { name: level, function: holding, address: 10, type: u16, writable: true, min: 0, max: 254 }
  - { name: flags, function: input, address: 11, type: u16 }
`);

  it('the good base document parses', () => {
    expect(parseProfile('acme-m1', good()).points).toHaveLength(2);
  });

  it.each([
    ['address out of range', (d: Doc) => (d.points[1].address = 70000), 'points.1.address'],
    ['negative address', (d: Doc) => (d.points[0].address = -1), 'points.0.address'],
    ['bad name', (d: Doc) => (d.points[0].name = 'Level'), 'points.0.name'],
    ['duplicate name', (d: Doc) => (d.points[1].name = 'level'), 'points.1.name'],
    ['writable input', (d: Doc) => (d.points[1].writable = true), 'points.1.writable'],
    ['min above max', (d: Doc) => (d.points[0].min = 300), 'points.0.min'],
    ['coil not bit', (d: Doc) => (d.points[1].function = 'coil'), 'points.1.type'],
    ['bit without bit index', (d: Doc) => (d.points[1].type = 'bit'), 'points.1.bit'],
    ['bit index out of range', (d: Doc) => Object.assign(d.points[1], { type: 'bit', bit: 16 }), 'points.1.bit'],
    ['bit index on a u16', (d: Doc) => (d.points[1].bit = 3), 'points.1.bit'],
    ['string without length', (d: Doc) => (d.points[1].type = 'string'), 'points.1.length'],
    ['length on a u16', (d: Doc) => (d.points[1].length = 4), 'points.1.length'],
    ['unknown type', (d: Doc) => (d.points[1].type = 'float'), 'points.1.type'],
    ['missing function', (d: Doc) => delete d.points[0].function, 'points.0.function'],
    ['missing address', (d: Doc) => delete d.points[0].address, 'points.0.address'],
    ['typo key', (d: Doc) => (d.points[0].adress = 3), 'points.0.adress'],
    ['zero scale', (d: Doc) => (d.points[0].scale = 0), 'points.0.scale'],
    [
      'f64 past the address space',
      (d: Doc) => Object.assign(d.points[1], { address: 65534, type: 'f64' }),
      'points.1.address',
    ],
    [
      'wider than maxReadRegisters',
      (d: Doc) => {
        d.maxReadRegisters = 1;
        d.points[1].type = 'f32';
      },
      'points.1.type',
    ],
    ['no source', (d: Doc) => delete d.source, 'source'],
    ['no points', (d: Doc) => (d.points = []), 'points'],
    ['pins on modbus', (d: Doc) => (d.pins = ['presence']), 'pins'],
    ['gpio without pins', (d: Doc) => (d.kind = 'gpio'), 'pins'],
    ['bad parity', (d: Doc) => (d.serial = { parity: 'mark' }), 'serial.parity'],
    ['bad source url', (d: Doc) => (d.source.url = 'not a url'), 'source.url'],
  ])('%s -> %s', (_label, mutate, path) => {
    const doc = good();
    mutate(doc);
    const problems = problemsOf(() => parseProfile('acme-m1', doc));
    expect(problems.map((p) => p.path)).toContain(path);
    for (const p of problems) expect(p.message.length).toBeGreaterThan(3);
  });

  it('a typo names the key it probably meant', () => {
    const doc = good() as Doc;
    doc.points[0].adress = 3;
    const problems = problemsOf(() => parseProfile('acme-m1', doc));
    expect(problems.find((p) => p.path === 'points.0.adress')?.message).toMatch(/did you mean "address"/);
  });

  it('the error message lists every problem on its own line', () => {
    const doc = good() as Doc;
    doc.points[0].name = 'Bad Name';
    doc.points[1].writable = true;
    expect(() => parseProfile('acme-m1', doc, 'acme-m1.yaml')).toThrow(/acme-m1\.yaml/);
    expect(() => parseProfile('acme-m1', doc, 'acme-m1.yaml')).toThrow(
      /\n {2}points\.0\.name: .+\n {2}points\.1\.writable: /,
    );
  });

  it('non-mapping documents, bad names and broken YAML are clear errors', () => {
    expect(problemsOf(() => parseProfile('acme-m1', null))[0]?.message).toMatch(/mapping/);
    expect(problemsOf(() => parseProfile('acme-m1', [1, 2]))[0]?.message).toMatch(/mapping/);
    expect(problemsOf(() => parseProfile('Bad Name', good()))[0]?.message).toMatch(/profile name/);
    const file = join(tmp, 'broken.yaml');
    writeFileSync(file, 'manufacturer: Acme\nmodel: [unclosed\n');
    expect(problemsOf(() => loadProfileFile(file))[0]?.message).toMatch(/^YAML/);
    const dup = join(tmp, 'dup.yaml');
    writeFileSync(dup, 'manufacturer: Acme\nmanufacturer: Acme\n');
    expect(problemsOf(() => loadProfileFile(dup))[0]?.message).toMatch(/YAML/);
    expect(() => loadProfileFile(join(tmp, 'nope.yaml'))).toThrow(/cannot read/);
  });

  it('gpio points need no register fields', () => {
    const p = parseProfile('my-loop', {
      manufacturer: 'Acme',
      model: 'L',
      kind: 'gpio',
      source: { title: 'Acme loop card manual' },
      pins: ['presence'],
      points: [{ name: 'intensity', unit: 'veh' }, { name: 'occupancy' }],
    });
    expect(p.points.map((x) => [x.function, x.address, x.type])).toEqual([
      ['input', 0, 'f64'],
      ['input', 1, 'f64'],
    ]);
  });
});

describe('JSON Schema', () => {
  it('is generated from the same schema and closed to unknown keys', () => {
    const schema = profileJsonSchema() as Doc;
    expect(schema.type).toBe('object');
    expect(schema.required).toEqual(expect.arrayContaining(['manufacturer', 'model', 'source', 'points']));
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.points.items.properties.address.maximum).toBe(65535);
  });
});
