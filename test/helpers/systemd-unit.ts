import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Unit = Map<string, Map<string, string[]>>;

/** systemd's unit syntax, enough for a static check: sections, repeated keys, comments. */
export function parseUnit(text: string): { unit: Unit; problems: string[] } {
  const unit: Unit = new Map();
  const problems: string[] = [];
  let section: Map<string, string[]> | null = null;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) return;
    const sec = /^\[(\w+)\]$/.exec(line);
    if (sec) {
      section = new Map();
      unit.set(sec[1]!, section);
      return;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!kv || !section) {
      problems.push(`line ${i + 1}: not a key=value in a section: ${line}`);
      return;
    }
    const values = section.get(kv[1]!) ?? [];
    values.push(kv[2]!);
    section.set(kv[1]!, values);
  });
  return { unit, problems };
}

/** The path of systemd-analyze on this machine, or '' (a container without systemd). */
export function systemdAnalyze(): string {
  return spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' }).stdout.trim();
}

/**
 * `systemd-analyze verify` on a unit text written as `name` in a temp dir, with /usr/bin/node
 * pointed at this machine's node (verify checks that ExecStart's program exists). Returns the
 * exit status and the output lines that mention the unit.
 */
export function verifyUnit(
  analyze: string,
  name: string,
  text: string,
): { status: number | null; lines: string[]; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'lb-unit-'));
  try {
    const file = join(dir, name);
    writeFileSync(file, text.replaceAll('/usr/bin/node ', `${process.execPath} `));
    const r = spawnSync(analyze, ['verify', file], { encoding: 'utf8' });
    const out = `${r.stdout}${r.stderr}`;
    return { status: r.status, lines: out.split('\n').filter((l) => l.includes(name)), out };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
