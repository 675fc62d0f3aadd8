import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Decodes Sparkplug B payloads with Debian's `protoc --decode` on the shipped sparkplug_b.proto:
 * a different tool than the gateway's encoder (protobufjs), so the tests check the bytes on the
 * wire against the published definition, not the encoder against itself.
 */
export interface DecodedMetric {
  name?: string;
  alias?: number;
  timestamp?: number;
  datatype?: number;
  is_historical?: boolean;
  is_null?: boolean;
  properties?: { keys: string[]; values: Record<string, unknown>[] };
  long_value?: number;
  double_value?: number;
  boolean_value?: boolean;
  string_value?: string;
}

export interface DecodedPayload {
  timestamp?: number;
  seq?: number;
  metrics: DecodedMetric[];
}

const PROTO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cloud-sync', 'northbound', 'sparkplug');
/** fields that repeat in sparkplug_b.proto (text format prints one line or block per element) */
const REPEATED = new Set(['p', 'metrics', 'keys', 'values']);

/** Decodes many payloads in one protoc run: they are framed as field 1 of a wrapper message. */
export function protocDecode(payloads: Buffer[]): DecodedPayload[] {
  if (payloads.length === 0) return [];
  const dir = mkdtempSync(join(tmpdir(), 'lb-protoc-'));
  try {
    writeFileSync(
      join(dir, 'capture.proto'),
      'syntax = "proto2";\nimport "sparkplug_b.proto";\nmessage Capture { repeated org.eclipse.tahu.protobuf.Payload p = 1; }\n',
    );
    // wire framing of "repeated Payload p = 1": tag 0x0a, varint length, bytes
    const parts: Buffer[] = [];
    for (const b of payloads) parts.push(Buffer.from([0x0a]), varint(b.length), b);
    const text = execFileSync(
      'protoc',
      [`--proto_path=${PROTO_DIR}`, `--proto_path=${dir}`, '--decode=Capture', join(dir, 'capture.proto')],
      { input: Buffer.concat(parts), maxBuffer: 64 * 1024 * 1024 },
    ).toString('utf8');
    const root = parseTextFormat(text) as { p?: DecodedPayload[] };
    const out = root.p ?? [];
    for (const p of out) p.metrics ??= [];
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

/** protobuf text format (what protoc --decode prints) into plain objects. */
function parseTextFormat(text: string): Record<string, unknown> {
  const stack: Record<string, unknown>[] = [{}];
  const put = (obj: Record<string, unknown>, key: string, value: unknown) => {
    if (!REPEATED.has(key)) {
      obj[key] = value;
      return;
    }
    const list = (obj[key] as unknown[] | undefined) ?? [];
    list.push(value);
    obj[key] = list;
  };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (line === '}') {
      stack.pop();
      continue;
    }
    const open = /^(\w+) \{$/.exec(line);
    if (open) {
      const child: Record<string, unknown> = {};
      put(stack[stack.length - 1]!, open[1]!, child);
      stack.push(child);
      continue;
    }
    const kv = /^(\w+): (.*)$/.exec(line);
    if (!kv) throw new Error(`protoc output not understood: ${line}`);
    put(stack[stack.length - 1]!, kv[1]!, scalar(kv[2]!));
  }
  return stack[0]!;
}

function scalar(v: string): unknown {
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (v.startsWith('"')) return unescapeC(v.slice(1, -1));
  const n = Number(v);
  return Number.isNaN(n) ? v : n;
}

/** C-style escapes of protoc's text format; octal escapes are bytes of UTF-8. */
function unescapeC(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const d = s[++i]!;
    if (/[0-7]/.test(d)) {
      const oct = s.slice(i, i + 3).match(/^[0-7]{1,3}/)![0];
      bytes.push(Number.parseInt(oct, 8));
      i += oct.length - 1;
    } else bytes.push(({ n: 10, t: 9, r: 13 } as Record<string, number>)[d] ?? d.charCodeAt(0));
  }
  return Buffer.from(bytes).toString('utf8');
}
