/**
 * Validates entities against the official FIWARE Smart Data Model schemas copied into
 * test/fixtures/smart-data-models: JSON Schema draft 2020-12, formats on, and every schema the
 * models reference registered under its URL so nothing is fetched.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { type NgsiLdEntity, toKeyValues } from '../../cloud-sync/receiver/ngsi-ld/entities.js';

export const SDM_DIR = fileURLToPath(new URL('../fixtures/smart-data-models/', import.meta.url));

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

let ajv: InstanceType<typeof Ajv2020> | undefined;
const validators = new Map<string, ValidateFunction>();

function build(): InstanceType<typeof Ajv2020> {
  // strict off: the published schemas use keywords ajv does not know (e.g. "derivedFrom")
  const a = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  (addFormats as unknown as (x: unknown) => void)(a);
  for (const f of readdirSync(SDM_DIR)) {
    if (!f.endsWith('-schema.json')) continue;
    const s = readJson(join(SDM_DIR, f));
    a.addSchema(s);
    // WeatherObserved also names the Environment schema by its raw GitHub address
    if (f === 'Environment-schema.json') {
      a.addSchema({
        ...s,
        $id: 'https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/Environment-schema.json',
      });
    }
  }
  return a;
}

/** The models we have schemas for (the folder names). */
export function modelTypes(): string[] {
  return readdirSync(SDM_DIR).filter((f) => statSync(join(SDM_DIR, f)).isDirectory());
}

export function validatorFor(type: string): ValidateFunction {
  ajv ??= build();
  let v = validators.get(type);
  if (!v) {
    v = ajv.compile(readJson(join(SDM_DIR, type, 'schema.json')));
    validators.set(type, v);
  }
  return v;
}

/** Problems of one normalized entity, turned to key-values, against its type's schema ([] when valid). */
export function schemaProblems(e: NgsiLdEntity): string[] {
  if (!modelTypes().includes(e.type)) return [`no schema for type ${e.type}`];
  const v = validatorFor(e.type);
  if (v(toKeyValues(e))) return [];
  return (v.errors ?? []).map((x) => `${e.id}${x.instancePath} ${x.message} ${JSON.stringify(x.params)}`);
}
