/**
 * A static check of a Dockerfile for the gateway image, for CI machines without a Docker engine:
 * pinned bases, multi-stage, a non-root USER, no ADD of URLs, a HEALTHCHECK on /healthz, a data
 * VOLUME, and no dev dependencies or compilers in the runtime stage. One line per problem.
 */
export interface Instruction {
  line: number;
  op: string;
  args: string;
}

export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let l = lines[i]!;
    if (/^\s*(#|$)/.test(l)) continue;
    // continuation lines (comments inside a continued instruction are dropped, as Docker does)
    while (/\\\s*$/.test(l) && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      if (/^\s*#/.test(next)) continue;
      l = `${l.replace(/\\\s*$/, '')} ${next.trim()}`;
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(l);
    if (m) out.push({ line: start + 1, op: m[1]!.toUpperCase(), args: m[2]!.trim() });
  }
  return out;
}

const EXACT_TAG = /:[^:@/]*\d+\.\d+\.\d+[^:@/]*$/;
const DIGEST = /@sha256:[0-9a-f]{64}$/;

export function checkDockerfile(text: string): string[] {
  const problems: string[] = [];
  const ins = parseDockerfile(text);
  const args = new Map<string, string>();
  const stages: { name?: string; image: string; line: number; body: Instruction[] }[] = [];
  for (const i of ins) {
    if (i.op === 'ARG' && stages.length === 0) {
      const [k, v] = i.args.split('=');
      if (k && v !== undefined) args.set(k.trim(), v.trim().replace(/^"|"$/g, ''));
    }
    if (i.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(i.args);
      const image = (m?.[1] ?? i.args).replace(/\$\{?(\w+)\}?/g, (_, k: string) => args.get(k) ?? `$${k}`);
      stages.push({ name: m?.[2], image, line: i.line, body: [] });
    } else {
      stages.at(-1)?.body.push(i);
    }
  }
  if (stages.length < 2) problems.push('not multi-stage: build in one stage, run from a clean slim one');
  const names = new Set(stages.map((s) => s.name).filter(Boolean));
  for (const s of stages) {
    if (names.has(s.image) || s.image === 'scratch') continue;
    if (s.image.includes('$'))
      problems.push(`line ${s.line}: base image ${s.image} uses an ARG without an exact default`);
    else if (!DIGEST.test(s.image) && !EXACT_TAG.test(s.image.split('@')[0]!)) {
      problems.push(
        `line ${s.line}: base image ${s.image} is not pinned (use an exact version tag or a @sha256 digest)`,
      );
    }
  }
  for (const i of ins) {
    if (i.op === 'ADD' && /(^|\s)(https?:\/\/|git@|ftp:\/\/)/.test(i.args)) {
      problems.push(`line ${i.line}: ADD of a URL (fetch in a RUN step with a checksum, or COPY a vetted file)`);
    }
  }
  const final = stages.at(-1);
  if (!final) return ['no FROM'];
  if (!/^node:22\.\d+\.\d+-bookworm-slim(@sha256:[0-9a-f]{64})?$/.test(final.image)) {
    problems.push(
      `line ${final.line}: the runtime base must be node:22.x.y-bookworm-slim (Node 22 LTS has armv7 builds), is ${final.image}`,
    );
  }
  const users = final.body.filter((i) => i.op === 'USER');
  const lastUser = users.at(-1)?.args.split(':')[0];
  if (!lastUser) problems.push('the runtime stage has no USER: it would run as root');
  else if (lastUser === 'root' || lastUser === '0') problems.push(`the runtime stage runs as ${lastUser}`);
  const hc = final.body.filter((i) => i.op === 'HEALTHCHECK').at(-1);
  if (!hc) problems.push('no HEALTHCHECK in the runtime stage');
  else if (/^NONE$/i.test(hc.args)) problems.push('HEALTHCHECK NONE');
  else if (!/healthz|LANGBIANG_HEALTHZ/.test(hc.args)) problems.push('the HEALTHCHECK does not ask /healthz');
  else if (/\bcurl\b|\bwget\b/.test(hc.args))
    problems.push('the HEALTHCHECK uses curl/wget, which the slim image does not have');
  if (hc && /LANGBIANG_HEALTHZ/.test(hc.args)) {
    const env = final.body
      .filter((i) => i.op === 'ENV')
      .map((i) => i.args)
      .join(' ');
    if (!/LANGBIANG_HEALTHZ=\S*\/healthz\b/.test(env))
      problems.push('ENV LANGBIANG_HEALTHZ does not point at /healthz');
  }
  if (!final.body.some((i) => i.op === 'VOLUME')) problems.push('no VOLUME for the data directory');
  for (const i of final.body) {
    if (i.op !== 'RUN') continue;
    if (/\bnpm\s+(ci|install|i)\b/.test(i.args) && !/--omit=dev|--production|--only=prod/.test(i.args)) {
      problems.push(`line ${i.line}: npm installs dev dependencies in the runtime stage (use --omit=dev)`);
    }
    if (/apt-get install[^&;|]*\s(g\+\+|gcc|make|build-essential|python3)(?=\s|$)/.test(i.args)) {
      problems.push(`line ${i.line}: compilers in the runtime stage (build native modules in the build stage)`);
    }
  }
  // node_modules copied from a build stage must have been pruned there
  for (const i of final.body) {
    const m = /^--from=(\S+)\s+\S*node_modules/.exec(i.op === 'COPY' ? i.args : '');
    if (!m) continue;
    const from = stages.find((s) => s.name === m[1]);
    const pruned = from?.body.some((b) => b.op === 'RUN' && /npm\s+(prune|ci|install)\b[^&;|]*--omit=dev/.test(b.args));
    if (!pruned)
      problems.push(
        `line ${i.line}: node_modules comes from stage ${m[1]} without npm prune --omit=dev / npm ci --omit=dev there`,
      );
  }
  return problems;
}

export function checkDockerignore(text: string): string[] {
  const entries = new Set(
    text
      .split('\n')
      .map((l) => l.trim().replace(/^\/|\/$/g, ''))
      .filter((l) => l && !l.startsWith('#')),
  );
  return ['.git', 'node_modules', '.data'].filter((e) => !entries.has(e)).map((e) => `.dockerignore lacks ${e}`);
}
