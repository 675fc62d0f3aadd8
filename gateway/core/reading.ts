/**
 * A reading is one value of one point of one device at one time. The store gives it a
 * gateway-wide seq; everything after (outbox, sync, export) speaks StoredReading.
 */

/** 'good' or why not. Stable strings: they appear in exports and on the wire. */
export const QUALITIES = [
  'good',
  'timeout', // no answer within the bus timeout
  'crc_error', // garbled frame
  'exception', // device answered with a Modbus exception
  'out_of_range', // decoded, but outside the profile's min/max
  'decode_error', // words came back but cannot be a value (NaN, bad string)
  'device_offline', // device backed off after repeated failures; not asked this cycle
  'bus_error', // the port/socket is down
  // Appended last: codes are list positions and travel on the wire, so older ones never move.
  'unsupported', // the unit refuses this point's registers (Modbus exception 2): it answers, just not this
] as const;
export type Quality = (typeof QUALITIES)[number];

export function qualityCode(q: Quality): number {
  const i = QUALITIES.indexOf(q);
  return i < 0 ? QUALITIES.length : i;
}
export function qualityFromCode(code: number): Quality {
  return QUALITIES[code] ?? 'decode_error';
}

export type PointValueType = number | string | null;

/** What a driver hands back for one point of one poll. No timestamps: the gateway stamps them. */
export interface PointValue {
  point: string;
  value: PointValueType;
  quality: Quality;
  /** short reason for a non-good quality, for logs and the console */
  error?: string;
}

export interface Reading {
  device: string;
  point: string;
  value: PointValueType;
  quality: Quality;
  /** wall clock, ms since epoch (corrected after NTP sync when it was taken before) */
  ts: number;
  /** monotonic ms since boot of the process clock source */
  mono: number;
  bootId: string;
  /** was the wall clock known to be synchronised when the reading was taken */
  synced: boolean;
  unit?: string;
}

export interface StoredReading extends Reading {
  seq: number;
}

/** A hole in the seq space the gateway made on purpose (cap reached), itself synced. */
export interface GapEvent {
  id: number;
  firstSeq: number;
  lastSeq: number;
  count: number;
  reason: 'byte_cap' | 'age_cap' | 'ingest_overflow';
  ts: number;
}
