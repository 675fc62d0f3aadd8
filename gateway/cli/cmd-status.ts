import { LangbiangError } from '../core/errors.js';
import { formatTable } from './output.js';
import { formatUpdateStatus } from './update-format.js';

export async function runStatus(o: { url: string; json?: boolean }): Promise<void> {
  let url: URL;
  try {
    url = new URL('/healthz', o.url);
  } catch {
    throw new LangbiangError('USAGE', `--url "${o.url}" is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new LangbiangError(
      'USAGE',
      `no gateway answers at ${url.origin} (${(err as Error).cause ?? (err as Error).message})`,
    );
  }
  // 503 is a degraded gateway, and its body says why
  if (!res.ok && res.status !== 503) throw new LangbiangError('USAGE', `${url.origin} answered HTTP ${res.status}`);
  const h = (await res.json().catch(() => {
    throw new LangbiangError(
      'USAGE',
      `${url.origin} answered HTTP ${res.status} without a health report (is it a gateway?)`,
    );
  })) as {
    status: 'ok' | 'degraded';
    problems?: string[];
    gateway: string;
    version: string;
    uptimeS: number;
    lastReadingAt: string | null;
    readings: number;
    lastSeq: number;
    clockSynced: boolean;
    update?: {
      running: string;
      previous: string | null;
      pending?: { version: string; attempts: number };
      last?: { outcome: string; version: string; at: string; reason?: string };
    };
    buses: { bus: string; open: boolean; problem?: string; devices: { device: string; state: string }[] }[];
    sync?: {
      connected: boolean;
      backlog: number;
      oldestUnsentAgeS: number | null;
      lastAckAt: string | null;
      confirm?: 'city' | 'broker';
      unconfirmed?: number;
      oldestUnconfirmedAgeS?: number | null;
      lastConfirmAt?: string | null;
      resends?: number;
    };
  };
  const degraded = h.status === 'degraded';
  if (degraded) process.exitCode = 3;
  if (o.json) {
    process.stdout.write(`${JSON.stringify(h, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `gateway ${h.gateway} (v${h.version}) up ${h.uptimeS}s, ${h.readings} readings stored (last seq ${h.lastSeq}), ` +
      `last reading ${h.lastReadingAt ?? 'none yet'}, clock ${h.clockSynced ? 'synchronised' : 'NOT synchronised'}\n`,
  );
  if (h.update && 'previous' in h.update) process.stdout.write(`${formatUpdateStatus(h.update)}\n`);
  if (h.sync) {
    const s = h.sync;
    process.stdout.write(
      `sync ${s.connected ? 'connected' : 'NOT connected'}, backlog ${s.backlog}` +
        `${s.oldestUnsentAgeS !== null ? ` (oldest ${s.oldestUnsentAgeS}s)` : ''}, last PUBACK ${s.lastAckAt ?? 'never'}\n`,
    );
    if (s.confirm === 'city') {
      process.stdout.write(
        `city confirmation: ${s.unconfirmed ?? 0} unconfirmed` +
          `${s.oldestUnconfirmedAgeS != null ? ` (oldest ${s.oldestUnconfirmedAgeS}s)` : ''}, ` +
          `last ack ${s.lastConfirmAt ?? 'never'}, resends ${s.resends ?? 0}\n`,
      );
    } else if (s.confirm === 'broker') {
      process.stdout.write('city confirmation: off (the broker PUBACK counts as delivered; see sync.confirm)\n');
    }
  }
  const rows = h.buses.flatMap((b) =>
    b.devices.length
      ? b.devices.map((d) => [b.bus, b.open ? 'open' : 'closed', d.device, d.state])
      : [[b.bus, b.open ? 'open' : 'closed', '', '']],
  );
  process.stdout.write(`${formatTable(['bus', 'port', 'device', 'health'], rows)}\n`);
  const problems = h.problems ?? [];
  process.stdout.write(
    degraded
      ? `DEGRADED: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${problems.map((p) => `  ${p}\n`).join('')}`
      : 'status ok\n',
  );
}
