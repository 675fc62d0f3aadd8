#!/usr/bin/env node
// Writes schema/langbiang-config.schema.json from the compiled config schema (one source: zod).
// Run after `tsc` (npm run build does both).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'gateway', 'config', 'json-schema.js');
const out = join(root, 'schema', 'langbiang-config.schema.json');

let mod;
try {
  mod = await import(pathToFileURL(compiled).href);
} catch (err) {
  const missing = err?.code === 'ERR_MODULE_NOT_FOUND' || err?.code === 'ENOENT';
  console.error(
    missing
      ? `gen-schema: ${relative(root, compiled)} is missing or incomplete; build first (npx tsc -p tsconfig.json, or npm run build)`
      : `gen-schema: cannot load ${relative(root, compiled)}: ${err?.message ?? err}`,
  );
  process.exit(1);
}
if (typeof mod.configJsonSchema !== 'function') {
  console.error(`gen-schema: ${relative(root, compiled)} does not export configJsonSchema(); rebuild (npm run build)`);
  process.exit(1);
}

const schema = mod.configJsonSchema();
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(schema, null, 2)}\n`);
console.log(`gen-schema: wrote ${relative(root, out)}`);
