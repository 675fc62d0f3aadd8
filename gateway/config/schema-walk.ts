import type { z } from 'zod';

/**
 * Finds which keys the schema allows at a path, to suggest the one a typo meant. Walks zod's
 * public `_zod.def` tree; discriminated unions are resolved with the value at that path.
 */

interface Def {
  type: string;
  innerType?: z.core.$ZodType;
  in?: z.core.$ZodType;
  shape?: Record<string, z.core.$ZodType>;
  element?: z.core.$ZodType;
  valueType?: z.core.$ZodType;
  options?: z.core.$ZodType[];
  discriminator?: string;
  values?: unknown[];
}

function defOf(schema: z.core.$ZodType): Def {
  return schema._zod.def as unknown as Def;
}

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional']);

function unwrap(schema: z.core.$ZodType, value: unknown): z.core.$ZodType | undefined {
  let s: z.core.$ZodType | undefined = schema;
  for (let guard = 0; s && guard < 50; guard++) {
    const def = defOf(s);
    if (WRAPPERS.has(def.type)) s = def.innerType;
    else if (def.type === 'pipe') s = def.in;
    else if (def.type === 'union' && def.discriminator) s = pickOption(def, value);
    else return s;
  }
  return undefined;
}

function pickOption(def: Def, value: unknown): z.core.$ZodType | undefined {
  if (value === null || typeof value !== 'object' || !def.discriminator) return undefined;
  const tag = (value as Record<string, unknown>)[def.discriminator];
  for (const option of def.options ?? []) {
    const shape = defOf(option).shape;
    const literal = shape?.[def.discriminator];
    if (literal && defOf(literal).values?.includes(tag)) return option;
  }
  return undefined;
}

export function objectKeysAt(
  root: z.core.$ZodType,
  path: readonly (string | number)[],
  data: unknown,
): string[] | undefined {
  let schema: z.core.$ZodType | undefined = root;
  let value: unknown = data;
  for (const seg of path) {
    schema = schema && unwrap(schema, value);
    if (!schema) return undefined;
    const def = defOf(schema);
    if (def.type === 'object') schema = def.shape?.[String(seg)];
    else if (def.type === 'array') schema = def.element;
    else if (def.type === 'record') schema = def.valueType;
    else return undefined;
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[String(seg)] : undefined;
  }
  schema = schema && unwrap(schema, value);
  if (!schema) return undefined;
  const def = defOf(schema);
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : undefined;
}
