import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  deviceEntities,
  type NgsiLdEntity,
  type NgsiLdSites,
  type PointValue,
  toKeyValues,
} from '../../cloud-sync/receiver/ngsi-ld/entities.js';
import { LangbiangError } from '../../gateway/core/errors.js';
import type { DeviceProfile } from '../../gateway/core/point.js';
import { loadProfiles, parseProfile } from '../../hardware/profiles.js';
import { modelFor, restingValue } from '../../hardware/simulators/value-models.js';
import { SDM_DIR, schemaProblems, validatorFor } from '../helpers/smart-data-models.js';

const profiles = loadProfiles();
const LOCATION = { lat: 11.9404, lon: 108.4583 };
const T0 = Date.parse('2026-01-15T03:00:00Z');

function sitesFor(profile: DeviceProfile): NgsiLdSites {
  return new Map([
    [
      'dl-gw-0001',
      {
        location: LOCATION,
        devices: new Map([['dev-1', { profile: profile.name, mapping: profile.ngsiLd }]]),
      },
    ],
  ]);
}

/** What the simulator of this profile reads at time t (the demo's and the integration tests' values). */
function simulated(profile: DeviceProfile, t: number): PointValue[] {
  return profile.points.map((p) => ({
    point: p.name,
    ts: t,
    value: modelFor(profile, p, 1, T0)?.(t) ?? restingValue(p),
    unit: p.unit ?? null,
  }));
}

/** Every point at the low or the high end of its range: scaled values must stay inside the model's. */
function atEdge(profile: DeviceProfile, t: number, edge: 'min' | 'max'): PointValue[] {
  return profile.points.map((p) => ({
    point: p.name,
    ts: t,
    value: p[edge] ?? (modelFor(profile, p, 1, T0)?.(t) as number | undefined) ?? restingValue(p),
    unit: p.unit ?? null,
  }));
}

const ref = { gateway: 'dl-gw-0001', device: 'dev-1' };

describe('NGSI-LD entities of every shipped profile validate against the official Smart Data Model schema', () => {
  for (const [name, profile] of profiles) {
    it(`${name} → ${profile.ngsiLd?.type ?? 'DeviceMeasurement (generic)'}`, () => {
      const sites = sitesFor(profile);
      const all: NgsiLdEntity[] = [];
      for (const h of [0, 6, 12, 18]) all.push(...deviceEntities(sites, ref, simulated(profile, T0 + h * 3_600_000)));
      all.push(...deviceEntities(sites, ref, atEdge(profile, T0, 'min')));
      all.push(...deviceEntities(sites, ref, atEdge(profile, T0, 'max')));
      expect(all.length).toBeGreaterThan(0);
      const type = profile.ngsiLd?.type ?? 'DeviceMeasurement';
      for (const e of all) {
        expect(e.type).toBe(type);
        expect(schemaProblems(e)).toEqual([]);
        expect(e['@context']).toContain(profile.ngsiLd?.context ?? e['@context']![0]);
      }
      if (profile.ngsiLd && type !== 'DeviceMeasurement') {
        const e = all[0]!;
        expect(e.id).toBe(`urn:ngsi-ld:${type}:dl-gw-0001:dev-1`);
        expect(e.location).toEqual({ type: 'GeoProperty', value: { type: 'Point', coordinates: [108.4583, 11.9404] } });
        // every point the block maps shows up as its attribute, with observedAt
        for (const a of Object.values(profile.ngsiLd.attributes)) {
          const attr = e[a.name!] as { type: string; observedAt: string; unitCode?: string };
          expect(attr, a.name).toBeDefined();
          expect(attr.observedAt).toBe(new Date(T0).toISOString());
          if (a.unitCode) expect(attr.unitCode).toBe(a.unitCode);
        }
      } else {
        const mapped = profile.ngsiLd ? Object.keys(profile.ngsiLd.attributes) : profile.points.map((p) => p.name);
        const ids = new Set(all.map((e) => e.id));
        expect(ids).toEqual(new Set(mapped.map((p) => `urn:ngsi-ld:DeviceMeasurement:dl-gw-0001:dev-1:${p}`)));
      }
    });
  }

  it('soil probe: moisture in % becomes a 0..1 fraction, EC in µS/cm becomes S/m', () => {
    const p = profiles.get('comwintop-cwt-soil')!;
    const [e] = deviceEntities(sitesFor(p), ref, [
      { point: 'moisture', ts: T0, value: 35.2, unit: '%' },
      { point: 'ec', ts: T0, value: 1200, unit: 'µS/cm' },
    ]);
    const kv = toKeyValues(e!);
    expect(kv.soilMoistureVwc).toBe(0.352);
    expect(kv.soilMoistureEc).toBe(0.12);
    expect(kv.hasAgriParcel).toBe('urn:ngsi-ld:AgriParcel:dl-gw-0001');
    expect(e!.hasAgriParcel).toEqual({ type: 'Relationship', object: 'urn:ngsi-ld:AgriParcel:dl-gw-0001' });
  });

  it('DALI gateway: lamp states become the Streetlight enums; no entity before the status is known', () => {
    const p = profiles.get('ecodim-dali-gw2')!;
    const sites = sitesFor(p);
    expect(deviceEntities(sites, ref, [{ point: 'brightness', ts: T0, value: 254, unit: null }])).toEqual([]);
    const [e] = deviceEntities(sites, ref, [
      { point: 'brightness', ts: T0, value: 254, unit: null },
      { point: 'lamp_failure', ts: T0 + 1000, value: 1, unit: null },
      { point: 'lamps_on', ts: T0, value: 0, unit: null },
    ]);
    const kv = toKeyValues(e!);
    expect(kv).toMatchObject({ illuminanceLevel: 1, status: 'defectiveLamp', powerState: 'off' });
    expect(kv.observationDateTime).toBe(new Date(T0 + 1000).toISOString());
  });

  it('a device the city has no config for maps to generic DeviceMeasurement entities, without location', () => {
    const es = deviceEntities(new Map(), { gateway: 'gw-x', device: 'pump-7' }, [
      { point: 'flow_rate', ts: T0, value: 12.5, unit: 'm/s' },
      { point: 'state', ts: T0, value: 'running', unit: null },
      { point: 'broken', ts: T0, value: null, unit: null },
    ]);
    expect(es.map((e) => e.id)).toEqual([
      'urn:ngsi-ld:DeviceMeasurement:gw-x:pump-7:flow_rate',
      'urn:ngsi-ld:DeviceMeasurement:gw-x:pump-7:state',
    ]);
    for (const e of es) expect(schemaProblems(e)).toEqual([]);
    expect(toKeyValues(es[0]!)).toMatchObject({ numValue: 12.5, unit: 'MTS', controlledProperty: 'flow_rate' });
    expect(es[0]!.location).toBeUndefined();
    expect(toKeyValues(es[1]!)).toMatchObject({ textValue: 'running' });
  });

  it('--context replaces every model context', () => {
    const p = profiles.get('xy-md02')!;
    const [e] = deviceEntities(sitesFor(p), ref, simulated(p, T0), { context: 'https://city.example/ctx.jsonld' });
    expect(e!['@context']).toEqual(['https://city.example/ctx.jsonld']);
  });

  it('the validator is real: the official example passes, a wrong entity fails', () => {
    for (const type of ['AgriParcelRecord', 'Streetlight', 'TrafficFlowObserved', 'WeatherObserved']) {
      const ex = JSON.parse(readFileSync(join(SDM_DIR, type, 'example-normalized.jsonld'), 'utf8')) as NgsiLdEntity;
      // the official examples write some dates without a zone; the schema checks format only where it says date-time
      const kv = toKeyValues(ex);
      const v = validatorFor(type);
      if (!v(kv)) expect.fail(`${type} example: ${JSON.stringify(v.errors)}`);
    }
    const p = profiles.get('comwintop-cwt-soil')!;
    const [e] = deviceEntities(sitesFor(p), ref, [{ point: 'moisture', ts: T0, value: 35, unit: '%' }]);
    (e!.soilMoistureVwc as { value: number }).value = 35; // a percentage where the model wants 0..1
    expect(schemaProblems(e!).join()).toMatch(/soilMoistureVwc must be <= 1/);
    delete e!.location;
    expect(schemaProblems(e!).join()).toMatch(/must have required property 'location'/);
  });
});

describe('the ngsiLd block of a profile is checked', () => {
  const base = {
    manufacturer: 'X',
    model: 'Y',
    source: { title: 'doc' },
    points: [{ name: 'level', function: 'holding', address: 0, type: 'u16' }],
  };
  const problems = (ngsiLd: unknown) => {
    try {
      parseProfile('x', { ...base, ngsiLd });
    } catch (err) {
      expect(err).toBeInstanceOf(LangbiangError);
      return ((err as LangbiangError).details!.problems as { path: string; message: string }[]).map(
        (p) => `${p.path}: ${p.message}`,
      );
    }
    return [];
  };
  const ctx = 'https://example.org/context.jsonld';

  it('accepts a good block and keeps it on the profile', () => {
    const p = parseProfile('x', {
      ...base,
      ngsiLd: { type: 'WaterObserved', context: ctx, attributes: { level: { name: 'height', unitCode: 'MTR' } } },
    });
    expect(p.ngsiLd?.attributes.level?.name).toBe('height');
  });

  it('names the key at fault', () => {
    expect(problems({ type: 'WaterObserved', context: ctx, attributes: { levle: { name: 'height' } } })).toEqual([
      'ngsiLd.attributes.levle: "levle" is not a point of this profile',
    ]);
    expect(problems({ type: 'WaterObserved', context: ctx, attributes: { level: {} } })).toEqual([
      'ngsiLd.attributes.level.name: is required for type WaterObserved',
    ]);
    expect(
      problems({ type: 'WaterObserved', context: ctx, attributes: { level: { name: 'h', unitCode: 'metre' } } }),
    ).toEqual(['ngsiLd.attributes.level.unitCode: must be a UN/CEFACT common code (2 or 3 capitals/digits, e.g. CEL)']);
    expect(
      problems({ type: 'WaterObserved', context: ctx, requires: ['nope'], attributes: { level: { name: 'h' } } }),
    ).toEqual(['ngsiLd.requires.0: "nope" is not one of ngsiLd.attributes']);
    expect(problems({ type: 'WaterObserved', context: ctx, attributes: {}, atributes: {} })).toEqual([
      'ngsiLd.atributes: unknown key (did you mean "attributes"?)',
    ]);
  });
});
