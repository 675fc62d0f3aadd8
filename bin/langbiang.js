#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript in dist/ (no TS loader on a Pi).
import v8 from 'node:v8';

// Keep V8's young generation at its initial size. Startup (config schema, YAML, profiles) makes
// many short-lived objects that survive a scavenge or two; by default each such burst doubles the
// semi-spaces up to 16 MB each, and those pages stay resident for the life of the process. Fixed
// at 1 MB they cost ~26 MB less RSS on a Pi, for slightly more frequent (sub-ms) scavenges.
v8.setFlagsFromString('--semi-space-growth-factor=1');
// The long-running gateway (`start`) trades CPU for memory; the other commands (`receiver` on a
// server, `export` of a year of data) keep V8's defaults. The command is the first non-option word.
if (process.argv.slice(2).find((a) => !a.startsWith('-')) === 'start') {
  // No optimizing compilers (TurboFan; Maglev on Node 22): polling is I/O-bound and light, the
  // interpreter and the Sparkplug baseline compiler keep up with it, and an optimizing compiler
  // costs ~10-12 MB RSS (its code pages in the node binary, compile zones, optimized code, deopt
  // data). CPU-heavy paths run slower (a backlog drains ~3× slower, still above its target):
  // docs/performance.md. Both flags exist on Node 20 and 22.
  v8.setFlagsFromString('--no-opt');
  v8.setFlagsFromString('--no-maglev');
  // Grow the old generation in small steps (2 MB instead of 8 MB between full collections): the
  // garbage between collections is what makes the RSS peaks.
  v8.setFlagsFromString('--optimize-for-size');
}

import('../dist/gateway/cli/main.js')
  .then((m) => m.main(process.argv.slice(2)))
  .catch((err) => {
    process.stderr.write(`langbiang: ${err?.message ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
