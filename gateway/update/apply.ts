import { LangbiangError } from '../core/errors.js';
import type { BundleSummary, UpdateContext } from './types.js';

/** Verify (signature with pinned release keys in DATA_DIR/trust/release/*.pem, checksums, arch, not a
 *  downgrade, store schema readable) and install side by side; switch `current`; record the pending
 *  confirmation. Throws LangbiangError with codes such as UPDATE_BAD_SIGNATURE, UPDATE_CORRUPT,
 *  UPDATE_DOWNGRADE, UPDATE_INCOMPATIBLE, UPDATE_NO_KEY. Records an `update` event in both cases. */
export async function applyUpdate(
  bundlePath: string,
  ctx: UpdateContext,
): Promise<{ version: string; previous: string | null }> {
  void bundlePath;
  void ctx;
  throw new LangbiangError('UPDATE_FAILED', 'updates are not implemented yet');
}

/** The checks of applyUpdate that need no unpacking: signature, payload checksum, arch, version,
 *  store schema. Cheap enough to run after a download, before applying. */
export async function verifyBundle(bundlePath: string, ctx: UpdateContext): Promise<BundleSummary> {
  void bundlePath;
  void ctx;
  throw new LangbiangError('UPDATE_FAILED', 'updates are not implemented yet');
}
