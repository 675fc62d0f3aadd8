import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { PathSegment, RawProblem } from './problems.js';
import type { GatewayConfig } from './schema.js';

/**
 * What `validate` can check of the machine without the hardware answering: that the serial
 * ports the buses name exist here (a warning: the config may be written on a laptop for a Pi),
 * and that the TLS files are what their keys say — a certificate, a private key, and a pair that
 * matches (problems: the gateway could not connect with them).
 */

/** Where Linux keeps stable names of USB serial adapters. */
export const SERIAL_BY_ID = '/dev/serial/by-id';

/** The stable names of the serial adapters plugged in now (empty when none, or not Linux). */
export function serialAdapters(dir = SERIAL_BY_ID): string[] {
  try {
    return readdirSync(dir)
      .sort()
      .map((n) => `${dir}/${n}`);
  } catch {
    return [];
  }
}

/** A warning per bus whose serial port does not exist on this machine, listing the adapters that do. */
export function checkSerialPorts(config: GatewayConfig, byIdDir = SERIAL_BY_ID): RawProblem[] {
  const warnings: RawProblem[] = [];
  config.buses.forEach((bus, i) => {
    if (bus.type !== 'modbus-rtu' && bus.type !== 'firmata') return;
    if (existsSync(bus.port)) return;
    const here = serialAdapters(byIdDir);
    const list =
      here.length > 0
        ? `serial adapters on this machine (ls ${byIdDir}): ${here.join(', ')}`
        : `no serial adapter is plugged in on this machine (${byIdDir} is empty or absent)`;
    warnings.push({
      path: ['buses', i, 'port'],
      message: `${bus.port} does not exist on this machine; ${list} (fine if this config is for another machine)`,
    });
  });
  return warnings;
}

/** OpenSSL's text without its "error:1E08010C:DECODER routines::" prefix. */
function opensslText(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.replace(/^error:[0-9A-F]+:/, '').replace(/^[A-Za-z ]+routines::/, '');
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined; // checkSecretFiles reports unreadable files
  }
}

function certificate(path: PathSegment[], file: string, problems: RawProblem[]): X509Certificate | undefined {
  const text = readText(file);
  if (text === undefined) return undefined;
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    problems.push({
      path,
      message: `${file} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line${/BEGIN .*PRIVATE KEY/.test(text) ? '; it holds a private key — swapped with tls.key?' : ''})`,
    });
    return undefined;
  }
  try {
    return new X509Certificate(text);
  } catch (err) {
    problems.push({ path, message: `${file} is not a valid PEM certificate (${opensslText(err)})` });
    return undefined;
  }
}

function privateKey(path: PathSegment[], file: string, problems: RawProblem[]): KeyObject | undefined {
  const text = readText(file);
  if (text === undefined) return undefined;
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) {
    problems.push({
      path,
      message: `${file} is encrypted with a passphrase, which the gateway cannot type: decrypt it (openssl pkey -in KEY -out KEY.plain)`,
    });
    return undefined;
  }
  try {
    return createPrivateKey(text);
  } catch (err) {
    problems.push({ path, message: `${file} is not a PEM private key (${opensslText(err)})` });
    return undefined;
  }
}

/**
 * sync.tls.ca must parse as a certificate, sync.tls.cert as a certificate and sync.tls.key as a
 * private key that belongs to it. Expired certificates are warnings (a Pi without its clock set
 * thinks it is 1970 or last year; the broker will judge).
 */
export function checkTlsFiles(
  config: GatewayConfig,
  now = Date.now(),
): { problems: RawProblem[]; warnings: RawProblem[] } {
  const problems: RawProblem[] = [];
  const warnings: RawProblem[] = [];
  const tls = config.sync?.tls;
  if (!tls) return { problems, warnings };
  const expired = (path: PathSegment[], file: string, c: X509Certificate | undefined) => {
    if (c && Date.parse(c.validTo) < now)
      warnings.push({ path, message: `${file} expired on ${new Date(c.validTo).toISOString().slice(0, 10)}` });
  };
  if (tls.ca !== undefined)
    expired(['sync', 'tls', 'ca'], tls.ca, certificate(['sync', 'tls', 'ca'], tls.ca, problems));
  const cert = tls.cert !== undefined ? certificate(['sync', 'tls', 'cert'], tls.cert, problems) : undefined;
  if (tls.cert !== undefined) expired(['sync', 'tls', 'cert'], tls.cert, cert);
  const key = tls.key !== undefined ? privateKey(['sync', 'tls', 'key'], tls.key, problems) : undefined;
  if (cert && key && !cert.checkPrivateKey(key)) {
    problems.push({
      path: ['sync', 'tls', 'key'],
      message: `${tls.key} does not belong to the certificate in sync.tls.cert (${tls.cert}): the broker would refuse the handshake`,
    });
  }
  return { problems, warnings };
}
