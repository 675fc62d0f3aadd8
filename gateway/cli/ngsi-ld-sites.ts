import { readdirSync, statSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import type { NgsiLdGateway, NgsiLdSites } from '../../cloud-sync/receiver/ngsi-ld/index.js';
import { configError, loadConfigFile } from '../config/index.js';
import { LangbiangError } from '../core/errors.js';

/**
 * What the city's NGSI-LD side knows of its gateways: each gateway's location and each device's
 * profile, from the city's copies of the gateway configs (the same YAML files it provisions and
 * pushes). A directory means every *.yaml / *.yml in it. Each config is validated as
 * `langbiang validate` would, except that its secret files need not exist here; its
 * gateway.profilesDir (relative to the file) supplies custom profiles.
 */
export function loadNgsiLdSites(path: string | undefined): NgsiLdSites {
  const sites = new Map<string, NgsiLdGateway & { file: string }>();
  if (path === undefined) return sites;
  const at = resolve(path);
  let files: string[];
  try {
    files = statSync(at).isDirectory()
      ? readdirSync(at)
          .filter((f) => ['.yaml', '.yml'].includes(extname(f)))
          .sort()
          .map((f) => join(at, f))
      : [at];
  } catch {
    throw new LangbiangError('USAGE', `--gateway-configs ${path}: no such file or directory`);
  }
  if (files.length === 0)
    throw new LangbiangError('USAGE', `--gateway-configs ${path}: no *.yaml gateway configs in it`);
  for (const file of files) {
    const r = loadConfigFile(file, { baseDir: dirname(file), checkFiles: false });
    if (!r.ok) throw configError(file, r.problems);
    const { gateway, devices } = r.config;
    const other = sites.get(gateway.id);
    if (other) throw new LangbiangError('USAGE', `${file}: gateway ${gateway.id} is also configured in ${other.file}`);
    sites.set(gateway.id, {
      file,
      location: { lat: gateway.location.lat, lon: gateway.location.lon },
      devices: new Map(
        devices.map((d) => [d.id, { profile: d.profile, mapping: r.profiles.get(d.profile)?.ngsiLd }] as const),
      ),
    });
  }
  return sites;
}
