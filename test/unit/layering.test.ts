import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The import rule of the architecture, checked on every source file rather than kept in prose:
 * - `drivers/`, `cloud-sync/` and `flows/` import only the shared vocabulary (`gateway/core/`),
 *   their own folder, and `hardware/` data (profiles, boards — not the simulators);
 *   never each other, never the gateway's shell;
 * - `hardware/` imports `gateway/core/`, itself, and the drivers' register codec (its simulators
 *   encode registers the way a device does);
 * - `gateway/core/` imports nothing of ours but itself;
 * - `node:` built-ins and npm packages are always allowed.
 * The rest of `gateway/` is the composition root and may import anything. Static imports, re-exports,
 * dynamic import() and require() all count.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Imports the rule does not allow, each with the reason it is there. Keep it short. */
const ALLOWED_EXCEPTIONS: Record<string, string> = {};

type Layer = 'drivers' | 'cloud-sync' | 'flows' | 'hardware' | 'gateway/core';

function layerOf(file: string): Layer | 'gateway' | 'other' {
  if (file.startsWith('gateway/core/')) return 'gateway/core';
  for (const l of ['drivers', 'cloud-sync', 'flows', 'hardware'] as const) if (file.startsWith(`${l}/`)) return l;
  if (file.startsWith('gateway/')) return 'gateway';
  return 'other';
}

/** Why `from` may not import `to` (both relative to the repository root), or null when it may. */
function violation(from: string, to: string): string | null {
  const layer = layerOf(from);
  if (layer === 'gateway' || layer === 'other') return null;
  const target = layerOf(to);
  if (target === 'gateway/core') return null;
  if (layer === 'gateway/core') return `gateway/core imports only itself, not ${to}`;
  if (target === layer) return null;
  if (target === 'hardware' && layer !== 'hardware') {
    return to.startsWith('hardware/simulators/') ? `${layer}/ may use hardware data, not its simulators (${to})` : null;
  }
  if (layer === 'hardware' && to === 'drivers/modbus/codec.ts') return null;
  if (target === 'gateway') return `${layer}/ may not import the gateway's shell (${to}); use gateway/core`;
  return `${layer}/ may not import ${target}/ (${to})`;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'public') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every relative module a file names: static imports, re-exports and dynamic import(). */
function relativeImports(text: string): string[] {
  const specs: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+)\1/g;
  for (let m = re.exec(text); m; m = re.exec(text)) specs.push(m[2]!);
  return specs;
}

function resolveSpec(fromFile: string, spec: string): string {
  const abs = resolve(dirname(join(ROOT, fromFile)), spec);
  // sources import their compiled name (.js); the file on disk is .ts. The plain-JS Node-RED nodes
  // import the compiled tree itself (dist/gateway/core/…), which is the source file of that name.
  return relative(ROOT, abs)
    .replace(/^dist\//, '')
    .replace(/\.js$/, '.ts');
}

describe('the import rule', () => {
  it('the checker itself refuses what the rule refuses', () => {
    expect(violation('drivers/modbus/bus.ts', 'gateway/core/errors.ts')).toBeNull();
    expect(violation('drivers/modbus/bus.ts', 'gateway/store/store.ts')).toMatch(/shell/);
    expect(violation('cloud-sync/agent.ts', 'drivers/modbus/codec.ts')).toMatch(/may not import drivers/);
    expect(violation('flows/host/supervisor.ts', 'cloud-sync/agent.ts')).toMatch(/may not import cloud-sync/);
    expect(violation('cloud-sync/receiver/ngsi-ld/map.ts', 'hardware/profiles.ts')).toBeNull();
    expect(violation('drivers/gpio/bus.ts', 'hardware/simulators/loop.ts')).toMatch(/simulators/);
    expect(violation('hardware/simulators/sim-unit.ts', 'drivers/modbus/codec.ts')).toBeNull();
    expect(violation('hardware/simulators/sim-unit.ts', 'drivers/modbus/bus.ts')).toMatch(/may not import drivers/);
    expect(violation('gateway/core/outbox.ts', 'gateway/store/store.ts')).toMatch(/only itself/);
    expect(violation('gateway/app.ts', 'cloud-sync/agent.ts')).toBeNull();
    // the Node-RED nodes (plain JS) import compiled files: judged as the sources they come from
    const node = 'flows/nodes/lib/gateway.js';
    expect(violation(node, resolveSpec(node, '../../../dist/gateway/core/duration.js'))).toBeNull();
    expect(violation(node, resolveSpec(node, '../../../dist/gateway/store/store.js'))).toMatch(/shell/);
  });

  it('holds for every file of drivers/, cloud-sync/, flows/, hardware/ and gateway/core/', () => {
    const problems: string[] = [];
    let checked = 0;
    for (const top of ['drivers', 'cloud-sync', 'flows', 'hardware', 'gateway/core']) {
      for (const abs of sourceFiles(join(ROOT, top))) {
        const file = relative(ROOT, abs);
        for (const spec of relativeImports(readFileSync(abs, 'utf8'))) {
          const to = resolveSpec(file, spec);
          checked++;
          const why = violation(file, to);
          if (why && ALLOWED_EXCEPTIONS[`${file} -> ${to}`] === undefined) problems.push(`${file}: ${why}`);
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(problems).toEqual([]);
  });
});
