import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONTROL_KEYS_DIR } from '../../gateway/control-keys.js';
import { signMessage } from '../../gateway/core/signed.js';

/** A city control key for tests: pin it in a data directory, sign configs and commands with it. */
export interface CityKey {
  name: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  keys: Map<string, KeyObject>;
  /** writes <dataDir>/trust/control/NAME.pem, as the provisioning import does */
  pin(dataDir: string): void;
  /** PEM files as `langbiang city keygen` writes them: DIR/NAME.key and DIR/NAME.pem */
  writeFiles(dir: string): { privateFile: string; publicFile: string };
  signConfig(gateway: string, message: Record<string, unknown>, o?: { issuedAt?: number; lifetimeMs?: number }): Buffer;
  /** a command with a deadline 5 min ahead unless it has one */
  signCommand(
    gateway: string,
    command: Record<string, unknown>,
    o?: { issuedAt?: number; lifetimeMs?: number },
  ): Buffer;
  /** an update order (gateway/update/order.ts) */
  signUpdate(gateway: string, order: Record<string, unknown>, o?: { issuedAt?: number; lifetimeMs?: number }): Buffer;
}

export function makeCityKey(name = 'city-test'): CityKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const sign = (
    kind: 'config' | 'command' | 'update',
    gateway: string,
    message: Record<string, unknown>,
    o: { issuedAt?: number; lifetimeMs?: number } = {},
  ) => {
    const issuedAt = o.issuedAt ?? Date.now();
    return signMessage({
      kind,
      gateway,
      message,
      issuedAt,
      expiresAt: issuedAt + (o.lifetimeMs ?? 10 * 60_000),
      keyName: name,
      privateKey,
    });
  };
  return {
    name,
    privateKey,
    publicKey,
    keys: new Map([[name, publicKey]]),
    pin(dataDir) {
      mkdirSync(join(dataDir, CONTROL_KEYS_DIR), { recursive: true });
      writeFileSync(join(dataDir, CONTROL_KEYS_DIR, `${name}.pem`), pem);
    },
    writeFiles(dir) {
      const privateFile = join(dir, `${name}.key`);
      const publicFile = join(dir, `${name}.pem`);
      writeFileSync(privateFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      writeFileSync(publicFile, pem);
      return { privateFile, publicFile };
    },
    signConfig: (gateway, message, o) => sign('config', gateway, message, o),
    signCommand: (gateway, command, o) =>
      sign('command', gateway, { deadline: Date.now() + 5 * 60_000, ...command }, o),
    signUpdate: (gateway, order, o) => sign('update', gateway, { v: 1, ...order }, o),
  };
}
