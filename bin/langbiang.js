#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript in dist/ (no TS loader on a Pi).
import v8 from 'node:v8';

// Keep V8's young generation at its initial size. Startup (config schema, YAML, profiles) makes
// many short-lived objects that survive a scavenge or two; by default each such burst doubles the
// semi-spaces up to 16 MB each, and those pages stay resident for the life of the process. Fixed
// at 1 MB they cost ~26 MB less RSS on a Pi, for slightly more frequent (sub-ms) scavenges.
v8.setFlagsFromString('--semi-space-growth-factor=1');

import('../dist/gateway/cli/main.js')
  .then((m) => m.main(process.argv.slice(2)))
  .catch((err) => {
    process.stderr.write(`langbiang: ${err && err.message ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
