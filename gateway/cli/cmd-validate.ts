import { formatProblems, loadConfigFile } from '../config/index.js';

export async function runValidate(o: { config: string }): Promise<void> {
  const result = loadConfigFile(o.config);
  if (result.ok) {
    const c = result.config;
    for (const w of result.warnings ?? [])
      process.stderr.write(`warning: ${w.path}: ${w.message}${w.line !== undefined ? ` (line ${w.line})` : ''}\n`);
    process.stdout.write(
      `${o.config}: valid (${plural(c.buses.length, 'bus', 'buses')}, ${plural(c.devices.length, 'device', 'devices')})\n`,
    );
    return;
  }
  process.stderr.write(`${formatProblems(result.problems)}\n`);
  process.exitCode = 1;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}
