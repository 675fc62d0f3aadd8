/**
 * Loads device profiles (YAML register maps) from the shipped hardware/profiles directory and
 * any extra directories a site adds. A technician adds a model by dropping a YAML file: no code.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { LangbiangError } from '../gateway/core/errors.js';
import type { DeviceProfile, PointDef } from '../gateway/core/point.js';
import {
  crossCheckProfile,
  editDistance,
  type Problem,
  type ProfileDoc,
  ProfileDocSchema,
  problemsFromZod,
} from './profile-schema.js';

const PROFILE_NAME = /^[a-z0-9][a-z0-9_-]*$/;
const YAML_EXTENSIONS = new Set(['.yaml', '.yml']);

/** Absolute path of the shipped profiles; works from the source tree and from dist/. */
export function builtinProfilesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'hardware', 'profiles');
    const parent = dirname(dir);
    if (parent === dir)
      throw new LangbiangError('INTERNAL', 'cannot find the package root (no package.json above the profile loader)');
    dir = parent;
  }
}

function invalid(name: string, file: string | undefined, problems: Problem[]): LangbiangError {
  const where = file ? ` (${file})` : '';
  const lines = problems.map((p) => `  ${p.path || '(profile)'}: ${p.message}`).join('\n');
  return new LangbiangError('PROFILE_INVALID', `profile "${name}"${where} is invalid:\n${lines}`, {
    profile: name,
    file,
    problems,
  });
}

function buildPoint(p: ProfileDoc['points'][number], index: number, doc: ProfileDoc): PointDef {
  const modbus = (doc.kind ?? 'modbus') === 'modbus';
  const point: PointDef = {
    name: p.name,
    // gpio/firmata points have no register; a uniform shape keeps every consumer simple
    function: p.function ?? 'input',
    address: p.address ?? (modbus ? 0 : index),
    type: p.type ?? 'f64',
    byteOrder: p.byteOrder ?? doc.defaults?.byteOrder ?? 'big',
    wordOrder: p.wordOrder ?? doc.defaults?.wordOrder ?? 'big',
    scale: p.scale ?? 1,
    offset: p.offset ?? 0,
    writable: p.writable ?? false,
  };
  for (const key of ['bit', 'length', 'unit', 'min', 'max', 'trigger', 'ladder', 'group', 'description'] as const) {
    if (p[key] !== undefined) (point as unknown as Record<string, unknown>)[key] = p[key];
  }
  return point;
}

/** Validates a parsed YAML document and returns the profile with every default applied. */
export function parseProfile(name: string, doc: unknown, file?: string): DeviceProfile {
  if (!PROFILE_NAME.test(name)) {
    throw invalid(name, file, [
      { path: '', message: 'the profile name (file name) must be lowercase letters, digits, "-" or "_"' },
    ]);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw invalid(name, file, [
      { path: '', message: 'a profile must be a YAML mapping (manufacturer, model, source, points, ...)' },
    ]);
  }
  const parsed = ProfileDocSchema.safeParse(doc);
  if (!parsed.success) throw invalid(name, file, problemsFromZod(parsed.error));
  const problems = crossCheckProfile(parsed.data);
  if (problems.length > 0) throw invalid(name, file, problems);

  const d = parsed.data;
  const profile: DeviceProfile = {
    name,
    manufacturer: d.manufacturer,
    model: d.model,
    source: {
      title: d.source.title,
      ...(d.source.url ? { url: d.source.url } : {}),
      ...(d.source.note ? { note: d.source.note } : {}),
    },
    maxReadRegisters: d.maxReadRegisters ?? 125,
    points: d.points.map((p, i) => buildPoint(p, i, d)),
    kind: d.kind ?? 'modbus',
  };
  if (d.description !== undefined) profile.description = d.description;
  if (d.serial) profile.serial = { ...d.serial };
  if (d.identify) profile.identify = { ...d.identify };
  if (d.pins) profile.pins = [...d.pins];
  if (d.optionalPins) profile.optionalPins = [...d.optionalPins];
  if (d.options) profile.options = structuredClone(d.options);
  if (d.ngsiLd) profile.ngsiLd = structuredClone(d.ngsiLd);
  return profile;
}

/** Reads, parses and validates one profile file; its name is the file name without extension. */
export function loadProfileFile(file: string): DeviceProfile {
  const name = basename(file, extname(file));
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new LangbiangError(
      'PROFILE_NOT_FOUND',
      `cannot read profile file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      { file },
      { cause: err },
    );
  }
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw invalid(
      name,
      file,
      document.errors.map((e) => ({ path: '', message: `YAML: ${e.message.split('\n')[0]}` })),
    );
  }
  return parseProfile(name, document.toJS(), file);
}

function profileFiles(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new LangbiangError('PROFILE_NOT_FOUND', `profile directory ${dir} does not exist`, { dir });
  }
  return readdirSync(dir)
    .filter((f) => YAML_EXTENSIONS.has(extname(f)))
    .sort()
    .map((f) => join(dir, f));
}

/** Every profile: the shipped ones, then each extra directory in order (a later file of the same name wins). */
export function loadProfiles(extraDirs: readonly string[] = []): Map<string, DeviceProfile> {
  const profiles = new Map<string, DeviceProfile>();
  for (const dir of [builtinProfilesDir(), ...extraDirs.map((d) => resolve(d))]) {
    for (const file of profileFiles(dir)) {
      const profile = loadProfileFile(file);
      profiles.set(profile.name, profile);
    }
  }
  return profiles;
}

/** Names among `known` that look like `name` (typos, partial names), best first. */
export function similarProfileNames(name: string, known: Iterable<string>): string[] {
  const scored: { n: string; d: number }[] = [];
  for (const n of known) {
    const d = editDistance(name, n);
    if (d <= Math.max(2, Math.floor(name.length / 3)) || n.includes(name) || name.includes(n)) scored.push({ n, d });
  }
  return scored.sort((a, b) => a.d - b.d || a.n.localeCompare(b.n)).map((s) => s.n);
}

/** One profile by name; PROFILE_NOT_FOUND names the close matches. */
export function loadProfile(name: string, extraDirs: readonly string[] = []): DeviceProfile {
  for (const dir of [...extraDirs.map((d) => resolve(d))].reverse().concat(builtinProfilesDir())) {
    for (const ext of YAML_EXTENSIONS) {
      const file = join(dir, `${name}${ext}`);
      if (PROFILE_NAME.test(name) && existsSync(file)) return loadProfileFile(file);
    }
  }
  const known = new Set<string>();
  for (const dir of [builtinProfilesDir(), ...extraDirs.map((d) => resolve(d))]) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) if (YAML_EXTENSIONS.has(extname(f))) known.add(basename(f, extname(f)));
  }
  const close = similarProfileNames(name, known);
  const hint =
    close.length > 0
      ? ` Did you mean ${close
          .slice(0, 3)
          .map((n) => `"${n}"`)
          .join(' or ')}?`
      : ` Known profiles: ${[...known].sort().join(', ')}.`;
  throw new LangbiangError('PROFILE_NOT_FOUND', `no device profile named "${name}".${hint}`, {
    profile: name,
    similar: close,
  });
}
