import { spawnSync } from 'node:child_process';
import { LangbiangError } from '../core/errors.js';

/**
 * The gateway's client identity is made with the openssl program (on every Pi and technician's
 * laptop): an EC P-256 key that never leaves the bundle/gateway, a CSR for the city's CA, and a
 * certificate — signed by the CA when its key is at hand, else self-signed for brokers that pin
 * client certificates. Nothing secret goes on a command line: openssl reads and writes files.
 */
function openssl(args: string[], what: string): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.error)
    throw new LangbiangError('USAGE', `openssl is needed to ${what} (Debian package openssl): ${r.error.message}`);
  if (r.status !== 0) {
    throw new LangbiangError(
      'USAGE',
      `openssl could not ${what}: ${(r.stderr || r.stdout).trim().split('\n').slice(-1)[0]}`,
    );
  }
}

export function makeKey(keyFile: string): void {
  openssl(
    ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile],
    'make the client key',
  );
}

export function makeCsr(keyFile: string, csrFile: string, gatewayId: string): void {
  openssl(
    ['req', '-new', '-key', keyFile, '-subj', `/O=Langbiang Edge/CN=${gatewayId}`, '-out', csrFile],
    'make the CSR',
  );
}

export function selfSign(keyFile: string, csrFile: string, certFile: string, days: number): void {
  openssl(
    ['x509', '-req', '-in', csrFile, '-key', keyFile, '-days', String(days), '-sha256', '-out', certFile],
    'self-sign the client certificate',
  );
}

export function signWithCa(
  csrFile: string,
  caCert: string,
  caKey: string,
  certFile: string,
  days: number,
  extFile: string,
): void {
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csrFile,
      '-CA',
      caCert,
      '-CAkey',
      caKey,
      '-CAcreateserial',
      '-days',
      String(days),
      '-sha256',
      '-extfile',
      extFile,
      '-out',
      certFile,
    ],
    'sign the client certificate with the CA',
  );
}

/** The subject CN of a certificate (to check a given cert names this gateway). */
export function certSubject(certFile: string): string {
  const r = spawnSync('openssl', ['x509', '-in', certFile, '-noout', '-subject'], { encoding: 'utf8' });
  if (r.status !== 0) throw new LangbiangError('USAGE', `${certFile} is not a PEM certificate`);
  return r.stdout.trim();
}
