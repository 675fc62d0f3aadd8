#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript in dist/ (no TS loader on a Pi).
import v8 from 'node:v8';

// The long-running gateway (`start`) trades CPU for memory; the other commands (`receiver` on a
// server, `export` of a year of data) keep V8's defaults. The command is the first non-option word.
if (process.argv.slice(2).find((a) => !a.startsWith('-')) === 'start') {
  // Keep V8's young generation at its initial size. Startup (config schema, YAML, profiles) makes
  // many short-lived objects that survive a scavenge or two; by default each such burst doubles the
  // semi-spaces up to 16 MB each, and those pages stay resident for the life of the process. Fixed
  // at 1 MB they cost ~26 MB less RSS on a Pi, for slightly more frequent (sub-ms) scavenges. (A
  // receiver decoding thousands of readings per message pays for it in garbage collection.)
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  // The optimizing compilers (TurboFan; Maglev on Node 22) only for the per-reading loops of a
  // backlog drain: the functions named hot… (the store's column decoder, the wire encoder's
  // columns). Polling is I/O-bound and light, the interpreter and the Sparkplug baseline compiler
  // keep up with it, and optimizing everything costs ~10-12 MB RSS (compile zones, optimized code,
  // deopt data of every warm function). Those few loops, interpreted, made a drain ~3× slower:
  // docs/performance.md. The flags exist on Node 20 and 22.
  v8.setFlagsFromString('--turbo-filter=hot*');
  v8.setFlagsFromString('--no-maglev');
  // Compile those few on the main thread (a few ms each, once) rather than on a background thread
  // with a malloc arena of its own: ~3 MB less RSS in a 4-minute comparison, the same peak over 30
  // minutes (79.4 vs 79.5 MB). TurboFan for these loops costs ~6 MB RSS in all, for a drain ~3×
  // faster and less CPU at steady state: docs/performance.md, "Drain as shipped".
  v8.setFlagsFromString('--no-concurrent-recompilation');
  v8.setFlagsFromString('--no-concurrent-osr');
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
