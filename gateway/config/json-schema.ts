import { z } from 'zod';
import { gatewayConfigSchema } from './schema.js';

/**
 * The JSON Schema of the config file as written (durations and sizes as text or numbers), for
 * editors and other tools. Draft 7, which yaml-language-server and most editors understand.
 */
export function configJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(gatewayConfigSchema, {
    io: 'input',
    target: 'draft-7',
    unrepresentable: 'any',
  }) as Record<string, unknown>;
  const { $schema, ...rest } = generated;
  return {
    $schema,
    title: 'Langbiang Edge gateway config',
    description:
      'Config of a Langbiang Edge gateway (YAML). Durations: 500ms, 30s, 5m, 2h, 90d or a number of ms. Sizes: 512KiB, 2GiB, 100MB or a number of bytes. See docs/config.md.',
    ...rest,
  };
}
