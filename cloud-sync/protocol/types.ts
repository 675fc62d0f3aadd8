import type { Quality } from '../../gateway/core/reading.js';

/** One reading as it travels to the city (and as the receiver stores it). */
export interface WireReading {
  seq: number;
  device: string;
  point: string;
  /** wall ms, UTC */
  ts: number;
  value: number | string | null;
  unit: string | null;
  quality: Quality;
}

/** A telemetry message after decoding, whatever the encoding on the wire. */
export interface TelemetryBatch {
  /** encoding version, bumped on any incompatible change */
  v: number;
  gateway: string;
  /** store epoch: random id made with the gateway's database; (gateway, epoch, seq) is unique */
  epoch: string;
  firstSeq: number;
  lastSeq: number;
  readings: WireReading[];
}

export interface WireEvent {
  id: number;
  kind: string;
  ts: number;
  data: Record<string, unknown>;
}

export interface EventsBatch {
  v: number;
  gateway: string;
  epoch: string;
  events: WireEvent[];
}
