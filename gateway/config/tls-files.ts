import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * TLS files checked before anything connects with them: the CA and the client certificate parse
 * as PEM certificates, the key as an unencrypted PEM private key, and the key belongs to the
 * certificate. A broken file then names the setting that points at it (`sync.tls.ca`, `--ca`),
 * not only OpenSSL's "PEM routines::no start line" at the first connect.
 */

export type PemWhich = 'ca' | 'cert' | 'key';

export interface PemFinding {
  which: PemWhich;
  message: string;
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
    return undefined; // whoever named the file reports it unreadable
  }
}

function certificate(
  which: PemWhich,
  file: string,
  keyName: string,
  problems: PemFinding[],
): X509Certificate | undefined {
  const text = readText(file);
  if (text === undefined) return undefined;
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    const swapped = /BEGIN .*PRIVATE KEY/.test(text) ? `; it holds a private key — swapped with ${keyName}?` : '';
    problems.push({
      which,
      message: `${file} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line${swapped})`,
    });
    return undefined;
  }
  try {
    return new X509Certificate(text);
  } catch (err) {
    problems.push({ which, message: `${file} is not a valid PEM certificate (${opensslText(err)})` });
    return undefined;
  }
}

function privateKey(file: string, problems: PemFinding[]): KeyObject | undefined {
  const text = readText(file);
  if (text === undefined) return undefined;
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) {
    problems.push({
      which: 'key',
      message: `${file} is encrypted with a passphrase, which nobody is there to type at start: decrypt it (openssl pkey -in KEY -out KEY.plain)`,
    });
    return undefined;
  }
  try {
    return createPrivateKey(text);
  } catch (err) {
    problems.push({ which: 'key', message: `${file} is not a PEM private key (${opensslText(err)})` });
    return undefined;
  }
}

/**
 * Problems (the connection would fail) and warnings (an expired certificate: a board without its
 * clock set thinks it is 1970 or last year, so the broker judges) of a set of TLS files. `names`
 * says how each file is named to the user.
 */
export function checkPemFiles(
  files: { ca?: string; cert?: string; key?: string },
  names: Record<PemWhich, string>,
  now = Date.now(),
): { problems: PemFinding[]; warnings: PemFinding[] } {
  const problems: PemFinding[] = [];
  const warnings: PemFinding[] = [];
  const expired = (which: PemWhich, file: string, c: X509Certificate | undefined) => {
    if (c && Date.parse(c.validTo) < now)
      warnings.push({ which, message: `${file} expired on ${new Date(c.validTo).toISOString().slice(0, 10)}` });
  };
  if (files.ca !== undefined) expired('ca', files.ca, certificate('ca', files.ca, names.key, problems));
  const cert = files.cert !== undefined ? certificate('cert', files.cert, names.key, problems) : undefined;
  if (files.cert !== undefined) expired('cert', files.cert, cert);
  const key = files.key !== undefined ? privateKey(files.key, problems) : undefined;
  if (cert && key && !cert.checkPrivateKey(key)) {
    problems.push({
      which: 'key',
      message: `${files.key} does not belong to the certificate in ${names.cert} (${files.cert}): the broker would refuse the handshake`,
    });
  }
  return { problems, warnings };
}
