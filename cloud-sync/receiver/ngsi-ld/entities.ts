import type { NgsiLdAttribute, NgsiLdMapping } from '../../../gateway/core/point.js';
import { unitCodeOf } from './units.js';

/** The NGSI-LD core context; the API treats it as the last context of every entity anyway. */
export const NGSI_LD_CORE_CONTEXT = 'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld';
/** Context of the Device domain, for the generic DeviceMeasurement entities. */
export const DEVICE_CONTEXT =
  'https://raw.githubusercontent.com/smart-data-models/dataModel.Device/master/context.jsonld';

export type NgsiLdAttr =
  | { type: 'Property'; value: unknown; observedAt?: string; unitCode?: string }
  | { type: 'Relationship'; object: string | string[] }
  | { type: 'GeoProperty'; value: { type: 'Point'; coordinates: [number, number] } };

/** An entity in NGSI-LD normalized form. */
export interface NgsiLdEntity {
  id: string;
  type: string;
  '@context'?: string[];
  [attribute: string]: unknown;
}

/** What the NGSI-LD side knows of one gateway: where it is, and each device's profile mapping. */
export interface NgsiLdGateway {
  location: { lat: number; lon: number };
  /** device id → its profile's `ngsiLd:` block (undefined: the profile has none, generic mapping) */
  devices: ReadonlyMap<string, { profile: string; mapping?: NgsiLdMapping }>;
}

/** gateway id → what we know of it (from the city's copies of the gateway configs) */
export type NgsiLdSites = ReadonlyMap<string, NgsiLdGateway>;

/** A device's newest value of one point. */
export interface PointValue {
  point: string;
  /** wall ms */
  ts: number;
  value: number | string | null;
  unit: string | null;
}

export interface DeviceRef {
  gateway: string;
  device: string;
}

/** `--context URL`: one context for every entity instead of each model's own. */
export interface EntityOptions {
  context?: string;
}

/**
 * The NGSI-LD entities of one device from its points' values: with a profile mapping to a model,
 * one entity of that type (each attribute with its own observedAt); for DeviceMeasurement (a
 * profile's choice, or a device we know no mapping for) one entity per point. Readings that are
 * not good must be filtered out before: a null never overwrites a value at the broker.
 */
export function deviceEntities(
  sites: NgsiLdSites,
  ref: DeviceRef,
  values: readonly PointValue[],
  opts: EntityOptions = {},
): NgsiLdEntity[] {
  const gw = sites.get(ref.gateway);
  const known = gw?.devices.get(ref.device);
  const mapping = known?.mapping;
  if (mapping && mapping.type !== 'DeviceMeasurement') {
    const e = modelEntity(mapping, ref, gw!.location, values, opts);
    return e ? [e] : [];
  }
  const out: NgsiLdEntity[] = [];
  for (const v of values) {
    const value = v.value;
    if (value === null) continue;
    const attr = mapping ? mapping.attributes[v.point] : undefined;
    // a DeviceMeasurement profile lists the points worth sending; without a profile, all of them
    if (mapping && !attr) continue;
    out.push(measurementEntity(ref, gw?.location, { ...v, value }, attr, mapping?.context, opts));
  }
  return out;
}

export function entityId(type: string, ...parts: string[]): string {
  return `urn:ngsi-ld:${type}:${parts.join(':')}`;
}

function contextOf(modelContext: string, opts: EntityOptions): string[] {
  return opts.context ? [opts.context] : [modelContext, NGSI_LD_CORE_CONTEXT];
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function dateTime(ms: number): { '@type': 'DateTime'; '@value': string } {
  return { '@type': 'DateTime', '@value': iso(ms) };
}

function geo(loc: { lat: number; lon: number }): NgsiLdAttr {
  // GeoJSON: longitude first
  return { type: 'GeoProperty', value: { type: 'Point', coordinates: [loc.lon, loc.lat] } };
}

function fill(template: string, ref: DeviceRef): string {
  return template.replaceAll('{gateway}', ref.gateway).replaceAll('{device}', ref.device);
}

/** reading value → model value (scale, or a table for states); undefined when it has no model value */
export function modelValue(attr: NgsiLdAttribute | undefined, value: number | string): number | string | undefined {
  if (attr?.values) return attr.values[String(value)] ?? attr.otherwise;
  if (typeof value !== 'number') return attr?.scale === undefined ? value : undefined;
  if (!Number.isFinite(value)) return undefined;
  // twelve significant digits: 254 × (1/254) is 1, not 1.0000000000000002 (a model's maximum is 1)
  return attr?.scale === undefined ? value : Number((value * attr.scale).toPrecision(12));
}

function modelEntity(
  m: NgsiLdMapping,
  ref: DeviceRef,
  location: { lat: number; lon: number },
  values: readonly PointValue[],
  opts: EntityOptions,
): NgsiLdEntity | undefined {
  const have = new Set<string>();
  const attrs: Record<string, NgsiLdAttr> = {};
  let newest = -Infinity;
  for (const v of values) {
    const a = m.attributes[v.point];
    if (!a?.name || v.value === null) continue;
    const value = modelValue(a, v.value);
    if (value === undefined) continue;
    const p: NgsiLdAttr = { type: 'Property', value, observedAt: iso(v.ts) };
    if (a.unitCode && typeof value === 'number') p.unitCode = a.unitCode;
    attrs[a.name] = p;
    have.add(v.point);
    if (v.ts > newest) newest = v.ts;
  }
  if (have.size === 0) return undefined;
  if ((m.requires ?? []).some((p) => !have.has(p))) return undefined;
  const e: NgsiLdEntity = { id: entityId(m.type, ref.gateway, ref.device), type: m.type };
  e.name = { type: 'Property', value: ref.device } satisfies NgsiLdAttr;
  e.location = geo(location);
  for (const [name, s] of Object.entries(m.static ?? {})) {
    e[name] =
      'object' in s
        ? ({
            type: 'Relationship',
            object: Array.isArray(s.object) ? s.object.map((o) => fill(o, ref)) : fill(s.object, ref),
          } satisfies NgsiLdAttr)
        : ({
            type: 'Property',
            value: typeof s.value === 'string' ? fill(s.value, ref) : s.value,
          } satisfies NgsiLdAttr);
  }
  Object.assign(e, attrs);
  if (m.observedAttribute) e[m.observedAttribute] = { type: 'Property', value: dateTime(newest) };
  e['@context'] = contextOf(m.context, opts);
  return e;
}

function measurementEntity(
  ref: DeviceRef,
  location: { lat: number; lon: number } | undefined,
  v: PointValue & { value: number | string },
  attr: NgsiLdAttribute | undefined,
  modelContext: string | undefined,
  opts: EntityOptions,
): NgsiLdEntity {
  const e: NgsiLdEntity = {
    id: entityId('DeviceMeasurement', ref.gateway, ref.device, v.point),
    type: 'DeviceMeasurement',
  };
  const unitCode = attr?.unitCode ?? unitCodeOf(v.unit);
  e.name = { type: 'Property', value: `${ref.device} ${v.point}` } satisfies NgsiLdAttr;
  if (location) e.location = geo(location);
  const value = modelValue(attr, v.value);
  if (typeof value === 'number') {
    const p: NgsiLdAttr = { type: 'Property', value, observedAt: iso(v.ts) };
    if (unitCode) p.unitCode = unitCode;
    e.numValue = p;
  } else {
    e.textValue = { type: 'Property', value: String(value ?? v.value), observedAt: iso(v.ts) } satisfies NgsiLdAttr;
  }
  // the unit as the model's own `unit` text too: a UN/CEFACT code when there is one
  const unit = unitCode ?? v.unit;
  if (unit) e.unit = { type: 'Property', value: unit } satisfies NgsiLdAttr;
  e.controlledProperty = { type: 'Property', value: attr?.controlledProperty ?? v.point } satisfies NgsiLdAttr;
  e.dateObserved = { type: 'Property', value: dateTime(v.ts) } satisfies NgsiLdAttr;
  e.refDevice = { type: 'Relationship', object: entityId('Device', ref.gateway, ref.device) } satisfies NgsiLdAttr;
  e['@context'] = contextOf(modelContext ?? DEVICE_CONTEXT, opts);
  return e;
}

/**
 * Normalized → key-values: each attribute's value (a DateTime's string, a Relationship's object),
 * without `@context`. The Smart Data Model schemas describe this form.
 */
export function toKeyValues(e: NgsiLdEntity): Record<string, unknown> {
  const out: Record<string, unknown> = { id: e.id, type: e.type };
  for (const [k, a] of Object.entries(e)) {
    if (k === 'id' || k === 'type' || k === '@context') continue;
    const attr = a as NgsiLdAttr;
    if (attr.type === 'Relationship') out[k] = attr.object;
    else {
      const v = attr.value as unknown;
      out[k] = v !== null && typeof v === 'object' && '@value' in v ? (v as { '@value': unknown })['@value'] : v;
    }
  }
  return out;
}
