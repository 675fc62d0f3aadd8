import { readFileSync } from 'node:fs';
import Ajv from 'ajv';
import { describe, expect, it } from 'vitest';
import { parseUpdateOrder, updateOrderMessage } from '../../gateway/update/order.js';

/** The JSON Schema of docs/protocol.md, "Update orders", says what the gateway takes, no more and no less. */
function schemaTitled(title: string): object {
  const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
  for (const m of doc.matchAll(/```json\n([\s\S]*?)```/g)) {
    try {
      const j = JSON.parse(m[1]!) as { title?: string };
      if (j.title === title) return j;
    } catch {
      // an example with … in it
    }
  }
  throw new Error(`no schema titled ${title} in docs/protocol.md`);
}

describe('the update order JSON Schema in docs/protocol.md', () => {
  const validate = new Ajv({ strict: false }).compile(
    schemaTitled('Langbiang update order (the message of a signed envelope of kind update)'),
  );
  const good = updateOrderMessage({
    version: '1.4.0-rc.1',
    url: 'https://updates.example.vn/langbiang-1.4.0-rc.1-arm64.lbr',
    size: 18234567,
    sha256: 'ab'.repeat(32),
  });

  it('accepts what the city tool signs, and the gateway takes it', () => {
    expect(validate(good), JSON.stringify(validate.errors)).toBe(true);
    expect(parseUpdateOrder(good).ok).toBe(true);
  });

  it('refuses what the gateway refuses', () => {
    for (const bad of [
      { ...good, extra: 1 },
      { ...good, v: 2 },
      { ...good, version: '1.4' },
      { ...good, url: 'ftp://x/y' },
      { ...good, size: 0 },
      { ...good, sha256: 'AB'.repeat(32) },
    ]) {
      expect(validate(bad), JSON.stringify(bad)).toBe(false);
      expect(parseUpdateOrder(bad).ok, JSON.stringify(bad)).toBe(false);
    }
  });
});
