export { demoConfigPath, packageRoot } from './demo.js';
export { configJsonSchema } from './json-schema.js';
export {
  type ConfigResult,
  configError,
  loadConfigFile,
  loadConfigOrThrow,
  type ParseConfigOptions,
  parseConfigText,
} from './load.js';
export { type ConfigProblem, formatProblems } from './problems.js';
export * from './schema.js';
export { formatDuration, formatSize, parseDuration, parseSize } from './units.js';
