import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMAND_RESULT_CODES, isCommandResultCode } from '../../gateway/core/command.js';

describe('command result codes: one list', () => {
  it('the JSON Schema of cmd/result in docs/protocol.md names exactly the codes of gateway/core', () => {
    const doc = readFileSync(join(process.cwd(), 'docs', 'protocol.md'), 'utf8');
    const schema = doc.slice(doc.indexOf('"title": "Langbiang command result"'));
    const m = /"code": \{ "enum": (\[[^\]]*\]) \}/.exec(schema);
    expect(m, 'the cmd/result schema lists its codes').not.toBeNull();
    expect(JSON.parse(m![1]!)).toEqual([...COMMAND_RESULT_CODES]);
  });

  it('tells result codes from other error codes', () => {
    for (const code of COMMAND_RESULT_CODES) expect(isCommandResultCode(code)).toBe(true);
    expect(isCommandResultCode('STORE_FAILED')).toBe(false);
    expect(isCommandResultCode('busy')).toBe(false);
  });
});
