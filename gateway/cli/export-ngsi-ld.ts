import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { NgsiLdEntity } from '../../cloud-sync/receiver/ngsi-ld/index.js';
import { LangbiangError } from '../core/errors.js';
import { STORE_FILE, Store } from '../store/index.js';
import { loadNgsiLdSites } from './ngsi-ld-sites.js';
import { checkContextFlag } from './receiver-ngsi-ld.js';

export interface NgsiLdExportOptions {
  dataDir?: string;
  receiverDb?: string;
  /** receiver export: only this gateway */
  gateway?: string;
  device?: string;
  point?: string;
  from?: number;
  to?: number;
  gatewayConfigs?: string;
  context?: string;
}

const CHUNK_CHARS = 64 * 1024;

/**
 * `langbiang export --format ngsi-ld`: normalized NGSI-LD entities, one JSON object per line, one
 * per device per observation time (see EntityStream). The gateway configs (`--gateway-configs`)
 * give the gateways' locations and the devices' profiles; without them every device maps to the
 * generic DeviceMeasurement. From a gateway's data directory the config names the gateway too.
 */
export async function runNgsiLdExport(o: NgsiLdExportOptions, out: NodeJS.WritableStream): Promise<void> {
  checkContextFlag(o.context);
  const sites = loadNgsiLdSites(o.gatewayConfigs);
  const { EntityStream } = await import('../../cloud-sync/receiver/ngsi-ld/index.js');
  const stream = new EntityStream(sites, { context: o.context });
  let chunk = '';
  const emit = async (entities: NgsiLdEntity[]) => {
    for (const e of entities) chunk += `${JSON.stringify(e)}\n`;
    if (chunk.length >= CHUNK_CHARS) {
      await write(out, chunk);
      chunk = '';
    }
  };
  const q = { device: o.device, point: o.point, from: o.from, to: o.to };

  if (o.receiverDb) {
    const { openReceiverStore } = await import('../../cloud-sync/receiver/index.js');
    const store = await openReceiverStore(o.receiverDb, { readonly: true });
    try {
      for await (const page of store.readings({ ...q, gateway: o.gateway }))
        for (const r of page) await emit(stream.push(r));
    } finally {
      await store.close();
    }
  } else {
    if (sites.size !== 1) {
      throw new LangbiangError(
        'USAGE',
        '--format ngsi-ld with --data-dir needs --gateway-configs FILE: the config of this gateway (its id, location and device profiles)',
      );
    }
    const gateway = [...sites.keys()][0]!;
    const dir = resolve(o.dataDir!);
    if (!existsSync(join(dir, STORE_FILE)))
      throw new LangbiangError('USAGE', `no gateway database in ${dir} (expected ${STORE_FILE})`);
    const store = Store.open({ dataDir: dir, readonly: true });
    try {
      for (const r of store.iterate(q)) await emit(stream.push({ ...r, gateway, unit: r.unit ?? null }));
    } finally {
      store.close();
    }
  }
  await emit(stream.flush());
  if (chunk) await write(out, chunk);
}

function write(out: NodeJS.WritableStream, s: string): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(s, (err) => (err ? reject(err) : resolve()));
  });
}
