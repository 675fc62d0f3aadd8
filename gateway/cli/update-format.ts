/** One or two lines a technician reads: what runs, what is kept, what happened last. */
export function formatUpdateStatus(s: {
  running: string;
  previous: string | null;
  pending?: { version: string; attempts: number };
  last?: { outcome: string; version: string; at: string; reason?: string };
}): string {
  const lines = [`software ${s.running}, previous ${s.previous ?? 'none'}`];
  if (s.pending) lines.push(`release ${s.pending.version} waits for confirmation (start ${s.pending.attempts})`);
  if (s.last)
    lines.push(
      `last update: ${s.last.version} ${s.last.outcome}${s.last.reason ? ` (${s.last.reason})` : ''} at ${s.last.at}`,
    );
  return lines.join('\n');
}
