import { readFileSync } from 'node:fs';
import { describeError, LangbiangError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { loadNgsiLdSites } from './ngsi-ld-sites.js';

/** The receiver's NGSI-LD flags (`langbiang receiver … --ngsi-ld URL`). */
export interface NgsiLdCliOptions {
  ngsiLd?: string;
  tenant?: string;
  context?: string;
  ngsiLdTokenFile?: string;
  gatewayConfigs?: string;
}

/** `--context` (receiver and export) must be the URL of a JSON-LD context. */
export function checkContextFlag(context: string | undefined): void {
  if (context !== undefined && !/^https?:\/\/\S+$/.test(context))
    throw new LangbiangError(
      'USAGE',
      `--context ${JSON.stringify(context)} is not an http(s) URL of a JSON-LD context`,
    );
}

/** Checks the flags before anything starts: a typo fails the command, not the first upsert. */
export function checkNgsiLdFlags(o: NgsiLdCliOptions): void {
  if (!o.ngsiLd) {
    for (const [flag, v] of [
      ['--tenant', o.tenant],
      ['--context', o.context],
      ['--ngsi-ld-token-file', o.ngsiLdTokenFile],
      ['--gateway-configs', o.gatewayConfigs],
    ] as const) {
      if (v !== undefined) throw new LangbiangError('USAGE', `${flag} needs --ngsi-ld URL`);
    }
    return;
  }
  checkContextFlag(o.context);
  if (o.tenant !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(o.tenant))
    throw new LangbiangError('USAGE', `--tenant ${JSON.stringify(o.tenant)}: letters, digits, '-' and '_' only`);
}

/**
 * Starts the NGSI-LD output beside the receiver when `--ngsi-ld` is given; resolves with its stop
 * (or undefined). It reads the receiver database `db` on its own connection.
 */
export async function startNgsiLdOutput(
  o: NgsiLdCliOptions,
  db: string,
  log: Logger,
): Promise<{ stop(): Promise<void>; stats(): object } | undefined> {
  checkNgsiLdFlags(o);
  if (!o.ngsiLd) return undefined;
  const sites = loadNgsiLdSites(o.gatewayConfigs);
  let token: string | undefined;
  if (o.ngsiLdTokenFile) {
    try {
      token = readFileSync(o.ngsiLdTokenFile, 'utf8').trim();
    } catch (err) {
      throw new LangbiangError('USAGE', `cannot read --ngsi-ld-token-file ${o.ngsiLdTokenFile}: ${describeError(err)}`);
    }
  }
  const { NgsiLdClient, NgsiLdOutput, openNgsiLdSource } = await import('../../cloud-sync/receiver/ngsi-ld/index.js');
  const client = new NgsiLdClient({ url: o.ngsiLd, tenant: o.tenant, token });
  const source = await openNgsiLdSource(db);
  const output = new NgsiLdOutput({
    source,
    client,
    sites,
    name: `${client.endpoint}|${o.tenant ?? ''}`,
    entity: { context: o.context },
    logger: log,
  });
  output.start();
  log.info(
    { endpoint: client.endpoint, tenant: o.tenant, gateways: sites.size },
    sites.size
      ? 'NGSI-LD output started'
      : 'NGSI-LD output started without --gateway-configs: every device maps to generic DeviceMeasurement entities',
  );
  return output;
}
