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
  /**
   * The batch starts right after the gateway's confirmed cursor: every seq below firstSeq was
   * confirmed to the gateway before. A receiver counts them as settled (see docs/protocol.md,
   * "End-to-end acknowledgement").
   */
  fromConfirmed?: boolean;
  /** the gateway asks for an ack now, not at the receiver's pace (it drains, resends, or lags) */
  promptAck?: boolean;
  /** the gateway reads compact (binary) acks */
  compactAck?: boolean;
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
  /**
   * The batch holds every event with an id in (after, last event's id]: ids that are missing in
   * that span do not exist. Absent from gateways before end-to-end acknowledgement.
   */
  after?: number;
  /** every event id at or below this was confirmed to the gateway before (see `fromConfirmed`) */
  confirmed?: number;
  events: WireEvent[];
}
