import type { KeyObject } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KEY_NAME, parsePublicKey } from './core/signed.js';

/**
 * The city's control keys pinned on this gateway: one Ed25519 public key (PEM, SPKI) per file in
 * `<dataDir>/trust/control/NAME.pem`; NAME is the key's name, the `key` a signed message names and
 * the audit's `actor`. Written by the provisioning import (`trust/control/` in the bundle) or by a
 * technician on site; never by a config, so a remote config cannot change who may send configs.
 */
export const CONTROL_KEYS_DIR = join('trust', 'control');

export interface ControlKeys {
  keys: Map<string, KeyObject>;
  /** files that are there but could not be used, one sentence each */
  problems: string[];
}

export function controlKeysDir(dataDir: string): string {
  return join(dataDir, CONTROL_KEYS_DIR);
}

/**
 * The city receivers' keys pinned on this gateway (`<dataDir>/trust/ack/NAME.pem`): with one, the
 * gateway takes only end-to-end acknowledgements signed by it — a forged ack cannot make it forget
 * readings the city never stored. A separate role from the control keys: a receiver may say what
 * it stored, never send a command.
 */
export const ACK_KEYS_DIR = join('trust', 'ack');

export function ackKeysDir(dataDir: string): string {
  return join(dataDir, ACK_KEYS_DIR);
}

/**
 * The city's release keys (`<dataDir>/trust/release/NAME.pem`): a release bundle installs only when
 * its manifest is signed by one (gateway/update). A role of its own: a key that may send a config
 * or a command cannot replace the gateway's software, and the other way round. Like the others,
 * pinned by provisioning or by a technician on site, never by a config.
 */
export const RELEASE_KEYS_DIR = join('trust', 'release');

export function releaseKeysDir(dataDir: string): string {
  return join(dataDir, RELEASE_KEYS_DIR);
}

export function loadReleaseKeys(dataDir: string): ControlKeys {
  return loadPinnedKeys(releaseKeysDir(dataDir));
}

export function loadControlKeys(dataDir: string): ControlKeys {
  return loadPinnedKeys(controlKeysDir(dataDir));
}

export function loadAckKeys(dataDir: string): ControlKeys {
  return loadPinnedKeys(ackKeysDir(dataDir));
}

/** Every `NAME.pem` of a directory as an Ed25519 public key; a missing directory pins nothing. */
function loadPinnedKeys(dir: string): ControlKeys {
  const keys = new Map<string, KeyObject>();
  const problems: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return { keys, problems };
  }
  for (const file of names.sort()) {
    if (!file.endsWith('.pem')) continue;
    const name = file.slice(0, -'.pem'.length);
    const path = join(dir, file);
    if (!KEY_NAME.test(name)) {
      problems.push(`${path}: the key name must be letters, digits, . _ - (at most 64)`);
      continue;
    }
    try {
      // a pinned key is a plain file: a link could be swapped for another key later
      if (!lstatSync(path).isFile()) throw new Error('not a plain file');
      keys.set(name, parsePublicKey(readFileSync(path, 'utf8')));
    } catch (err) {
      problems.push(`${path}: not a usable Ed25519 public key (${(err as Error).message.slice(0, 120)})`);
    }
  }
  return { keys, problems };
}
