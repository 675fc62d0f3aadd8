import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkDockerfile, checkDockerignore } from '../helpers/dockerfile-check.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const good = readFileSync(`${ROOT}Dockerfile.arm`, 'utf8');

describe('Dockerfile.arm (static check; CI has no Docker engine)', () => {
  it('passes: pinned bases, multi-stage, non-root, HEALTHCHECK, VOLUME, no dev deps', () => {
    expect(checkDockerfile(good)).toEqual([]);
  });

  it('.dockerignore keeps node_modules, .git and local data out of the context', () => {
    expect(checkDockerignore(readFileSync(`${ROOT}.dockerignore`, 'utf8'))).toEqual([]);
    expect(checkDockerignore('node_modules\n')).toEqual(['.dockerignore lacks .git', '.dockerignore lacks .data']);
  });

  it('copies into the runtime stage only files that exist in the project', () => {
    for (const m of good.matchAll(/^COPY --from=build \/src\/(\S+)/gm)) {
      if (['node_modules', 'dist', 'schema'].includes(m[1]!)) continue; // made by the build stage
      expect(() => readFileSync(`${ROOT}${m[1]}`.replace(/\/$/, '')), m[1]).not.toThrow(/ENOENT/);
    }
  });
});

describe('the checker fails on broken Dockerfiles', () => {
  const cases: [string, (s: string) => string, RegExp][] = [
    [
      'an unpinned base',
      (s) => s.replace(/FROM node:22\.23\.3-bookworm-slim AS runtime/, 'FROM node:22-bookworm-slim AS runtime'),
      /is not pinned/,
    ],
    [
      'a latest base',
      (s) => s.replace(/FROM node:22\.23\.3-bookworm-slim AS build/, 'FROM node:latest AS build'),
      /node:latest is not pinned/,
    ],
    ['no USER', (s) => s.replace(/^USER langbiang$/m, ''), /no USER/],
    ['USER root', (s) => s.replace(/^USER langbiang$/m, 'USER root'), /runs as root/],
    [
      'ADD of a URL',
      (s) => s.replace(/^WORKDIR \/app$/m, 'WORKDIR /app\nADD https://example.com/x.tgz /tmp/'),
      /ADD of a URL/,
    ],
    ['no HEALTHCHECK', (s) => s.replace(/^HEALTHCHECK[\s\S]*?process\.exit\(1\)\)"\]\n/m, ''), /no HEALTHCHECK/],
    [
      'HEALTHCHECK with curl',
      (s) => s.replace(/CMD \["node", "-e".*$/m, 'CMD curl -f http://127.0.0.1:8080/healthz'),
      /curl/,
    ],
    [
      'single stage',
      (s) => s.replace(/^FROM node:22\.23\.3-bookworm-slim AS runtime$/m, '').replace(/--from=build \/src\//g, ''),
      /not multi-stage/,
    ],
    ['dev deps in runtime', (s) => s.replace(/^USER langbiang$/m, 'RUN npm ci\nUSER langbiang'), /dev dependencies/],
    [
      'unpruned node_modules',
      (s) => s.replace(/ && npm prune --omit=dev --no-audit --no-fund \\\n/, ' \\\n'),
      /without npm prune/,
    ],
    [
      'compilers in runtime',
      (s) => s.replace(/^RUN groupadd/m, 'RUN apt-get install -y g++ && groupadd'),
      /compilers in the runtime stage/,
    ],
    [
      'health URL elsewhere',
      (s) => s.replace('LANGBIANG_HEALTHZ=http://127.0.0.1:8080/healthz', 'LANGBIANG_HEALTHZ=http://127.0.0.1:8080/'),
      /does not point at \/healthz/,
    ],
    ['no VOLUME', (s) => s.replace(/^VOLUME .*$/m, ''), /no VOLUME/],
    [
      'Node 24 runtime (no armv7)',
      (s) => s.replace(/FROM node:22\.23\.3-bookworm-slim AS runtime/, 'FROM node:24.1.0-bookworm-slim AS runtime'),
      /must be node:22/,
    ],
    [
      'ARG without exact default',
      (s) =>
        `ARG NODE=22\n${s.replace(/FROM node:22\.23\.3-bookworm-slim AS build/, `FROM node:$${'{'}NODE}-bookworm-slim AS build`)}`,
      /node:22-bookworm-slim is not pinned/,
    ],
  ];
  for (const [name, mutate, expected] of cases) {
    it(name, () => {
      const bad = mutate(good);
      expect(bad, 'the mutation must change the file').not.toBe(good);
      expect(checkDockerfile(bad).join('\n')).toMatch(expected);
    });
  }

  it('accepts a digest-pinned base and an ARG with an exact default', () => {
    const digest = `@sha256:${'a'.repeat(64)}`;
    const pinned = good.replace(
      /FROM node:22\.23\.3-bookworm-slim AS runtime/,
      `FROM node:22.23.3-bookworm-slim${digest} AS runtime`,
    );
    expect(checkDockerfile(pinned)).toEqual([]);
    const arg = `ARG NODE=22.23.3\n${good.replace(/FROM node:22\.23\.3-bookworm-slim AS build/, `FROM node:$${'{'}NODE}-bookworm-slim AS build`)}`;
    expect(checkDockerfile(arg)).toEqual([]);
  });
});

describe('Dockerfile.receiver (the city receiver image; static check)', () => {
  const receiver = readFileSync(`${ROOT}Dockerfile.receiver`, 'utf8');

  it('passes the same checks: pinned bases, multi-stage, non-root, HEALTHCHECK on /healthz, VOLUME, no dev deps', () => {
    expect(checkDockerfile(receiver)).toEqual([]);
  });

  it('runs `langbiang receiver` with its health endpoint on the port the HEALTHCHECK asks', () => {
    const entry = /^ENTRYPOINT (.*)$/m.exec(receiver)?.[1] ?? '';
    const argv = JSON.parse(entry) as string[];
    expect(argv.slice(0, 3)).toEqual(['node', '/app/bin/langbiang.js', 'receiver']);
    const port = argv[argv.indexOf('--health-port') + 1];
    expect(receiver).toContain(`LANGBIANG_HEALTHZ=http://127.0.0.1:${port}/healthz`);
    // the database default is on the volume
    const volume = /^VOLUME \["([^"]+)"\]$/m.exec(receiver)?.[1];
    expect(argv[argv.indexOf('--db') + 1]?.startsWith(`${volume}/`)).toBe(true);
  });

  it('copies into the runtime stage only files that exist in the project', () => {
    for (const m of receiver.matchAll(/^COPY --from=build \/src\/(\S+)/gm)) {
      if (['node_modules', 'dist'].includes(m[1]!)) continue; // made by the build stage
      expect(() => readFileSync(`${ROOT}${m[1]}`.replace(/\/$/, '')), m[1]).not.toThrow(/ENOENT/);
    }
  });
});
