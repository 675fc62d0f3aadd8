import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { LangbiangError } from '../../../gateway/core/errors.js';

/**
 * Sparkplug B payloads, encoded and decoded by protobufjs from the shipped sparkplug_b.proto (no
 * hand-written protobuf). Field names are protobufjs' camelCase of the .proto's (is_historical →
 * isHistorical, double_value → doubleValue).
 */

/** Sparkplug B DataType values (sparkplug_b.proto, enum DataType) that Langbiang uses. */
export const DataType = {
  Int64: 4,
  UInt64: 8,
  Double: 10,
  Boolean: 11,
  String: 12,
} as const;

export interface SpPropertyValue {
  type: number;
  isNull?: boolean;
  stringValue?: string;
  booleanValue?: boolean;
}

export interface SpMetric {
  name?: string;
  alias?: number;
  timestamp?: number;
  datatype?: number;
  isHistorical?: boolean;
  isNull?: boolean;
  properties?: { keys: string[]; values: SpPropertyValue[] };
  intValue?: number;
  longValue?: number;
  floatValue?: number;
  doubleValue?: number;
  booleanValue?: boolean;
  stringValue?: string;
}

export interface SpPayload {
  timestamp?: number;
  seq?: number;
  metrics: SpMetric[];
}

/** The .proto as shipped: found from the package root, so it works from the sources and from dist/. */
export function sparkplugProtoPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')))
      return join(dir, 'cloud-sync', 'northbound', 'sparkplug', 'sparkplug_b.proto');
    const parent = dirname(dir);
    if (parent === dir)
      throw new LangbiangError('INTERNAL', 'cannot find the package root (looking for sparkplug_b.proto)');
    dir = parent;
  }
}

let payloadType: protobuf.Type | null = null;

function type(): protobuf.Type {
  if (!payloadType)
    payloadType = protobuf.loadSync(sparkplugProtoPath()).lookupType('org.eclipse.tahu.protobuf.Payload');
  return payloadType;
}

export function encodePayload(p: SpPayload): Buffer {
  const t = type();
  const bytes = t.encode(t.fromObject(p)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes a payload from the platform (NCMD, DCMD); 64-bit integers come out as numbers. */
export function decodePayload(buf: Buffer): SpPayload {
  const t = type();
  const o = t.toObject(t.decode(buf), { longs: Number, defaults: false }) as SpPayload;
  o.metrics ??= [];
  return o;
}
