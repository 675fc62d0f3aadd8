#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript in dist/ (no TS loader on a Pi).
import('../dist/gateway/cli/main.js').then((m) => m.main(process.argv.slice(2))).catch((err) => {
  process.stderr.write(`langbiang: ${err && err.message ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
