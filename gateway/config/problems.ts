import type { z } from 'zod';
import { closest, didYouMean } from './did-you-mean.js';
import { objectKeysAt } from './schema-walk.js';

/** One thing wrong with a config, addressed by its key path (`buses.0.baudRate`). */
export interface ConfigProblem {
  /** dotted key path; for file-level problems, the file name (or '' when there is none) */
  path: string;
  message: string;
  /** 1-based YAML line the path points at, when it could be found */
  line?: number;
}

export type PathSegment = string | number;

/** A problem before its path is printed and its line looked up. */
export interface RawProblem {
  path: PathSegment[];
  message: string;
}

export function pathToString(path: readonly PropertyKey[]): string {
  // a key is text of the config too: a huge one is shortened like a value
  return path
    .map((seg) => (String(seg).length > MAX_QUOTED ? `${String(seg).slice(0, MAX_QUOTED)}…` : String(seg)))
    .join('.');
}

/** `path.to.key: what is wrong (line N)`, one line per problem. */
export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems
    .map((p) => {
      const where = p.line !== undefined ? ` (line ${p.line})` : '';
      return p.path === '' ? `${p.message}${where}` : `${p.path}: ${p.message}${where}`;
    })
    .join('\n');
}

/** A value as it should appear after "got": strings quoted, collections named the YAML way. */
/** Longest part of a value a problem message quotes: messages travel in events and logs. */
export const MAX_QUOTED = 40;

/** A string as a problem message quotes it: JSON-quoted, at most MAX_QUOTED characters of it. */
export function quoteShort(value: string, max = MAX_QUOTED): string {
  if (value.length <= max) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)`;
}

export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return quoteShort(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

const EXPECTED_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
  bigint: 'a number',
  null: 'null',
};

function listValues(values: readonly unknown[]): string {
  return values.map((v) => (typeof v === 'string' ? v : String(v))).join(', ');
}

// zod's raw issues are a union of many shapes; this reads the few fields the messages need.
interface LooseIssue {
  code?: string;
  input?: unknown;
  expected?: string;
  values?: readonly unknown[];
  origin?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  inclusive?: boolean;
  note?: string;
  discriminator?: string;
  options?: readonly unknown[];
  message?: string;
}

function boundMessage(iss: LooseIssue, small: boolean): string {
  const limit = Number(small ? iss.minimum : iss.maximum);
  const got = describeValue(iss.input);
  switch (iss.origin) {
    case 'string':
      return small && limit === 1
        ? 'must not be empty'
        : `must be ${small ? 'at least' : 'at most'} ${limit} characters`;
    case 'array':
    case 'set':
      return small && limit === 1
        ? 'must not be an empty list'
        : `must have ${small ? 'at least' : 'at most'} ${limit} entries`;
    default: {
      const rel = small
        ? iss.inclusive === false
          ? 'more than'
          : 'at least'
        : iss.inclusive === false
          ? 'less than'
          : 'at most';
      return `must be ${rel} ${limit}, got ${got}`;
    }
  }
}

/**
 * Messages in the project's voice (`expected a number, got "fast"`), for every issue a schema
 * did not word itself. Passed to safeParse, so other users of zod keep zod's own messages.
 */
export const configErrorMap = (raw: unknown): string | undefined => {
  const iss = raw as LooseIssue;
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'required';
      return `expected ${EXPECTED_NAMES[iss.expected ?? ''] ?? iss.expected}, got ${describeValue(iss.input)}`;
    case 'invalid_value': {
      const values = iss.values ?? [];
      if (values.length > 0 && values.every((v) => typeof v === 'number') && typeof iss.input !== 'number') {
        return `expected a number, got ${describeValue(iss.input)}`;
      }
      const hint = typeof iss.input === 'string' ? didYouMean(iss.input, values.map(String)) : '';
      if (values.length === 1) return `expected ${listValues(values)}, got ${describeValue(iss.input)}`;
      return `expected one of ${listValues(values)}, got ${describeValue(iss.input)}${hint}`;
    }
    case 'too_small':
      return boundMessage(iss, true);
    case 'too_big':
      return boundMessage(iss, false);
    case 'invalid_union': {
      if (iss.note === 'No matching discriminator' && iss.discriminator) {
        const options = (iss.options ?? []).map(String);
        const given =
          iss.input !== null && typeof iss.input === 'object'
            ? (iss.input as Record<string, unknown>)[iss.discriminator]
            : undefined;
        if (given === undefined) return `required (one of ${options.join(', ')})`;
        const hint = typeof given === 'string' ? didYouMean(given, options) : '';
        return `expected one of ${options.join(', ')}, got ${describeValue(given)}${hint}`;
      }
      return `unexpected value ${describeValue(iss.input)}`;
    }
    case 'invalid_format':
      return `${describeValue(iss.input)} has the wrong format`;
    default:
      return undefined;
  }
};

function unknownKeyMessage(key: string, known: readonly string[] | undefined): string {
  if (!known) return 'unknown key';
  // Secrets never go inline: point at the *File twin instead of accepting the value.
  if (known.includes(`${key}File`)) return `unknown key (secrets are read from files: use ${key}File)`;
  const hit = closest(key, known);
  if (hit !== undefined) return `unknown key (did you mean ${hit}?)`;
  return `unknown key (expected one of ${known.join(', ')})`;
}

/** zod issues → problems; unknown keys become one problem per key with a did-you-mean. */
export function issuesToProblems(
  issues: readonly z.core.$ZodIssue[],
  schema: z.core.$ZodType,
  data: unknown,
): RawProblem[] {
  const out: RawProblem[] = [];
  for (const iss of issues) {
    const path = iss.path.map((s) => (typeof s === 'symbol' ? String(s) : s)) as PathSegment[];
    if (iss.code === 'unrecognized_keys') {
      const known = objectKeysAt(schema, path, data);
      for (const key of iss.keys) out.push({ path: [...path, key], message: unknownKeyMessage(key, known) });
      continue;
    }
    out.push({ path, message: iss.message });
  }
  return out;
}
