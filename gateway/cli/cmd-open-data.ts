import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LangbiangError } from '../core/errors.js';

/**
 * `langbiang open-data build`: the configured datasets' closed days (or `--day`), then the DCAT-AP
 * catalog over every day the output directory holds.
 */
export async function runOpenDataBuild(o: {
  receiverDb: string;
  config: string;
  out: string;
  day?: string;
  gatewayConfigs?: string;
  json?: boolean;
}): Promise<void> {
  const { loadOpenDataConfig } = await import('../../cloud-sync/city/open-data-config.js');
  const { buildDay, builtDays, closedDaysToBuild } = await import('../../cloud-sync/city/open-data.js');
  const { buildCatalog } = await import('../../cloud-sync/city/dcat.js');
  const { isDay } = await import('../../cloud-sync/city/days.js');
  if (o.day !== undefined && !isDay(o.day))
    throw new LangbiangError('USAGE', `--day ${JSON.stringify(o.day)}: not a date (YYYY-MM-DD)`);
  const cfg = loadOpenDataConfig(o.config);
  const byProfile = cfg.datasets.findIndex((d) => d.profiles);
  if (byProfile >= 0 && !o.gatewayConfigs)
    throw new LangbiangError(
      'USAGE',
      `datasets.${byProfile}.profiles: selecting by profile needs --gateway-configs (which device has which profile)`,
    );
  let sites: import('../../cloud-sync/city/open-data.js').GatewaySites | undefined;
  if (o.gatewayConfigs) {
    const { loadNgsiLdSites } = await import('./ngsi-ld-sites.js');
    sites = new Map(
      [...loadNgsiLdSites(o.gatewayConfigs)].map(([gw, s]) => [
        gw,
        { location: s.location, profiles: new Map([...s.devices].map(([d, v]) => [d, v.profile])) },
      ]),
    );
  }
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const { openReceiverStore } = await import('../../cloud-sync/receiver/index.js');
  const store = await openReceiverStore(o.receiverDb, { readonly: true });
  const built = [];
  try {
    const days = o.day ? [o.day] : await closedDaysToBuild(store, cfg, out);
    for (const day of days) {
      const b = await buildDay(store, cfg, out, day, sites);
      built.push(b);
      if (!o.json) process.stdout.write(`${day}: ${b.datasets.map((d) => `${d.id} ${d.rows} rows`).join(', ')}\n`);
    }
  } finally {
    await store.close();
  }
  const catalog = buildCatalog(cfg, (id) => builtDays(out, id), sites);
  const file = join(out, 'catalog.jsonld');
  writeFileSync(`${file}.tmp`, `${JSON.stringify(catalog, null, 1)}\n`);
  renameSync(`${file}.tmp`, file);
  if (o.json) process.stdout.write(`${JSON.stringify({ days: built, catalog: file }, null, 2)}\n`);
  else process.stdout.write(`${built.length ? '' : 'every closed day is built already; '}catalog: ${file}\n`);
}

/** `langbiang open-data serve`: the built directory over HTTP, read-only, until stopped. */
export async function runOpenDataServe(o: { out: string; port: string; host: string }): Promise<void> {
  const port = Number(o.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new LangbiangError('USAGE', `--port ${JSON.stringify(o.port)}: not a TCP port`);
  const { existsSync } = await import('node:fs');
  if (!existsSync(join(resolve(o.out), 'catalog.jsonld')))
    throw new LangbiangError('USAGE', `${o.out} holds no catalog.jsonld (run langbiang open-data build first)`);
  const { serveOpenData } = await import('../../cloud-sync/city/open-data-server.js');
  const server = await serveOpenData(o.out, port, o.host).catch((err: Error) => {
    throw new LangbiangError('USAGE', `cannot listen on ${o.host}:${port}: ${err.message}`);
  });
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  process.stdout.write(`serving ${resolve(o.out)} on http://${o.host}:${bound}/ (catalog.jsonld)\n`);
  await new Promise<void>((r) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => server.close(() => r()));
  });
}
