import type { Quality } from '../../../gateway/core/reading.js';
import {
  deviceEntities,
  type EntityOptions,
  type NgsiLdEntity,
  type NgsiLdSites,
  type PointValue,
} from './entities.js';

/** A stored reading as both exports have it (the gateway's store and the receiver's). */
export interface ExportedReading {
  gateway: string;
  device: string;
  point: string;
  ts: number;
  value: number | string | null;
  unit: string | null;
  quality: Quality;
}

/**
 * `langbiang export --format ngsi-ld`: readings in store order → one entity per device per
 * observation time (the readings of one poll share a time). A model entity is the device's
 * state as of that time: every attribute it has had a good value for so far in the export, each
 * with its own observedAt — so each line can be upserted alone, or all of them in order into a
 * temporal store. A DeviceMeasurement (one entity per point) is sent only for the points read then.
 */
export class EntityStream {
  private readonly state = new Map<string, Map<string, PointValue>>();
  private group: { gateway: string; device: string; ts: number; values: PointValue[] } | undefined;

  constructor(
    private readonly sites: NgsiLdSites,
    private readonly opts: EntityOptions = {},
  ) {}

  /** Takes one reading; returns the entities of the observation it closed, if any. */
  push(r: ExportedReading): NgsiLdEntity[] {
    const g = this.group;
    const out = g && (g.gateway !== r.gateway || g.device !== r.device || g.ts !== r.ts) ? this.flush() : [];
    this.group ??= { gateway: r.gateway, device: r.device, ts: r.ts, values: [] };
    // a failed read has no value: it never replaces the last good one
    if (r.quality === 'good' && r.value !== null) {
      const v: PointValue = { point: r.point, ts: r.ts, value: r.value, unit: r.unit };
      this.group.values.push(v);
      const k = `${r.gateway}\u0000${r.device}`;
      let s = this.state.get(k);
      if (!s) {
        s = new Map();
        this.state.set(k, s);
      }
      const prev = s.get(r.point);
      if (!prev || prev.ts <= r.ts) s.set(r.point, v);
    }
    return out;
  }

  /** The entities of the observation in hand (call once more at the end). */
  flush(): NgsiLdEntity[] {
    const g = this.group;
    this.group = undefined;
    if (!g || g.values.length === 0) return [];
    const ref = { gateway: g.gateway, device: g.device };
    const mapping = this.sites.get(g.gateway)?.devices.get(g.device)?.mapping;
    if (!mapping || mapping.type === 'DeviceMeasurement') return deviceEntities(this.sites, ref, g.values, this.opts);
    const state = this.state.get(`${g.gateway}\u0000${g.device}`);
    return deviceEntities(this.sites, ref, [...(state?.values() ?? [])], this.opts);
  }
}
