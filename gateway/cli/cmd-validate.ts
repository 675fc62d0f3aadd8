import { formatProblems, loadConfigFile } from '../config/index.js';

export async function runValidate(o: { config: string }): Promise<void> {
  const result = loadConfigFile(o.config);
  if (result.ok) {
    const c = result.config;
    for (const w of result.warnings ?? []) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
    process.stdout.write(`${o.config}: valid (${c.buses.length} buses, ${c.devices.length} devices)\n`);
    return;
  }
  process.stderr.write(`${formatProblems(result.problems)}\n`);
  process.exitCode = 1;
}
