import { type BenchContext, type Benchmark, scratchDir } from './common.js';

/**
 * Runs one benchmark in this (fresh) process and prints its result as the last stdout line, so
 * /proc/self/io and RSS see that benchmark alone. argv: NAME [--quick]
 */
export const RESULT_PREFIX = 'BENCH_RESULT ';

async function main(): Promise<void> {
  const [name, ...rest] = process.argv.slice(2);
  if (!name || !/^[a-z-]+$/.test(name)) throw new Error('usage: child.js NAME [--quick]');
  const mod = (await import(`./${name}.js`)) as { default: Benchmark };
  const scratch = scratchDir(name);
  const ctx: BenchContext = { quick: rest.includes('--quick'), scratch: scratch.dir };
  try {
    const result = await mod.default(ctx);
    process.stdout.write(`\n${RESULT_PREFIX}${JSON.stringify(result)}\n`);
  } finally {
    scratch.remove();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
