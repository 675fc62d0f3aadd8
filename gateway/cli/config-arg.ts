import { formatProblems, type GatewayConfig, loadConfigFile } from '../config/index.js';
import { LangbiangError } from '../core/errors.js';

/** Load a config for a command that needs a valid one; problems become one error listing them. */
export function loadValidConfig(file: string): GatewayConfig {
  const result = loadConfigFile(file);
  if (!result.ok) {
    throw new LangbiangError('CONFIG_INVALID', `${file} is not valid:\n${formatProblems(result.problems)}`);
  }
  return result.config;
}
