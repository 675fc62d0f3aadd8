import { ApiError, api, h, logout, session, toast } from './api.js';
import { loadUpdate, wireUpdate } from './console-update.js';
import { wireSqlBox } from './sql-box.js';

let devices = [];
let thresholds = [];
const errText = (err) => (err instanceof ApiError ? err.message : String(err));
const when = (ms) => (ms ? new Date(ms).toLocaleString('en-GB', { timeZone: 'Asia/Ho_Chi_Minh' }) : '');

function table(el, head, rows) {
  el.replaceChildren(
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        head.map((x) => h('th', {}, x)),
      ),
    ),
    h('tbody', {}, rows),
  );
}

/** Local alarms that need attention, on top of the console (the same ones as the panel's banner). */
async function loadAlarms() {
  const { alarms } = await api('/api/alarms');
  const list = alarms.filter((a) => a.state === 'active' || a.fault);
  const box = document.getElementById('alarm-banner');
  box.classList.toggle('hidden', list.length === 0);
  box.replaceChildren(
    ...list.map((a) =>
      h(
        'p',
        { class: `alarm ${a.state === 'active' ? a.severity : 'fault'}`, dataset: { alarm: a.id } },
        h('strong', {}, `${a.state === 'active' ? 'ALARM' : 'SENSOR FAULT'} ${a.id}`),
        ` ${a.name ? `(${a.name}) ` : ''}${a.device}.${a.point}`,
        typeof a.value === 'number' ? ` = ${a.value}` : '',
        a.since ? ` since ${when(a.since)}` : '',
        a.fault ? ` · no good reading since ${when(a.valueAt ?? a.faultSince)}` : '',
      ),
    ),
  );
}

async function loadDevices() {
  const [buses, devs, health] = await Promise.all([
    api('/api/buses'),
    api('/api/devices'),
    // the same report as /healthz and `langbiang status` (503 when degraded still carries it)
    fetch('/healthz').then((r) => r.json()),
  ]);
  devices = devs;
  const problems = health.problems ?? [];
  document.getElementById('health').replaceChildren(
    h('span', { class: `badge ${health.status === 'ok' ? 'ok' : 'bus_error'}` }, health.status),
    problems.length
      ? h(
          'ul',
          { class: 'error' },
          problems.map((p) => h('li', {}, p)),
        )
      : ' every bus open, no device offline',
  );
  showSoftware(health.version, health.update);
  table(
    document.getElementById('buses'),
    ['bus', 'type', 'port', 'queue', 'transactions', 'reconnects', 'problem / last error'],
    buses.map((b) =>
      h(
        'tr',
        { dataset: { bus: b.bus } },
        h('td', {}, b.bus),
        h('td', {}, b.type),
        h('td', {}, h('span', { class: `badge ${b.open ? 'ok' : 'bus_error'}` }, b.open ? 'open' : 'closed')),
        h('td', {}, b.queueDepth),
        h('td', {}, b.transactions),
        h('td', {}, b.reconnects),
        h('td', { class: 'error' }, b.problem ?? b.lastError ?? ''),
      ),
    ),
  );
  table(
    document.getElementById('device-table'),
    ['device', 'zone', 'profile', 'bus/unit', 'health', 'polls', 'errors', 'last ok', 'last error', ''],
    devs.map((d) =>
      h(
        'tr',
        { dataset: { device: d.id } },
        h('td', {}, d.id, d.name ? h('div', { class: 'muted' }, d.name) : null),
        h('td', {}, d.zone ?? ''),
        h('td', {}, d.profile),
        h('td', {}, `${d.bus}${d.unit ? ` #${d.unit}` : ''}`),
        h(
          'td',
          {},
          h(
            'span',
            { class: `badge ${d.health?.state ?? 'offline'}` },
            d.enabled ? (d.health?.state ?? 'not polled') : 'disabled',
          ),
          // registers the unit refuses (exception 2): read no more, not a connection problem
          d.health?.unsupported?.length
            ? h('div', { class: 'muted unsupported' }, `unsupported: ${d.health.unsupported.join(', ')}`)
            : null,
        ),
        h('td', {}, d.health?.polls ?? ''),
        h('td', {}, d.health?.errors ?? ''),
        h('td', {}, when(d.health?.lastOkAt)),
        h('td', { class: 'error' }, d.health?.lastError ?? ''),
        h('td', {}, h('button', { type: 'button', class: 'small', onclick: () => testRead(d.id) }, 'Test read')),
      ),
    ),
  );
  const sel = document.getElementById('cmd-device');
  const keep = sel.value;
  sel.replaceChildren(
    ...devs.filter((d) => d.points.some((p) => p.writable)).map((d) => h('option', { value: d.id }, d.id)),
  );
  if (keep) sel.value = keep;
  fillPoints();
}

/** The running release, the one kept to go back to, and what the last update did. */
function showSoftware(version, u) {
  const box = document.getElementById('software');
  if (!u) {
    box.replaceChildren(`Software ${version ?? '?'}`);
    return;
  }
  const last = u.last;
  const bad = last && (last.outcome === 'rolled-back' || last.outcome === 'refused');
  box.replaceChildren(
    `Software ${u.running ?? version}, previous ${u.previous ?? 'none'}`,
    u.pending ? ` · ${u.pending.version} waits for confirmation (start ${u.pending.attempts})` : '',
    last
      ? h(
          'span',
          { class: bad ? 'error' : '', dataset: { outcome: last.outcome } },
          ` · last update: ${last.version} ${last.outcome}${last.reason ? ` (${last.reason})` : ''} ${when(last.at)}`,
        )
      : '',
  );
}

async function testRead(id) {
  const box = document.getElementById('test-read');
  box.classList.remove('hidden');
  box.replaceChildren(h('p', {}, `Reading ${id}…`));
  try {
    const r = await api(`/api/devices/${encodeURIComponent(id)}/read`, { method: 'POST', body: {} });
    const t = h('table', {});
    table(
      t,
      ['point', 'value', 'unit', 'quality', 'error'],
      r.values.map((v) =>
        h(
          'tr',
          {},
          h('td', {}, v.point),
          h('td', {}, v.value ?? ''),
          h('td', {}, v.unit ?? ''),
          h('td', {}, v.quality),
          h('td', {}, v.error ?? ''),
        ),
      ),
    );
    box.replaceChildren(h('h3', {}, `Test read of ${id} (${r.ms} ms)`), t);
  } catch (err) {
    box.replaceChildren(h('p', { class: 'error' }, errText(err)));
  }
}

function fillPoints() {
  const dev = devices.find((d) => d.id === document.getElementById('cmd-device').value);
  document
    .getElementById('cmd-point')
    .replaceChildren(
      ...(dev?.points ?? [])
        .filter((p) => p.writable)
        .map((p) => h('option', { value: p.name }, `${p.name}${p.unit ? ` (${p.unit})` : ''}`)),
    );
}

async function sendCommand(e) {
  e.preventDefault();
  const out = document.getElementById('cmd-result');
  out.classList.remove('hidden');
  const raw = document.getElementById('cmd-value').value.trim();
  const value = raw !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
  try {
    const r = await api('/api/commands', {
      method: 'POST',
      body: {
        device: document.getElementById('cmd-device').value,
        point: document.getElementById('cmd-point').value,
        value,
      },
    });
    out.textContent = JSON.stringify(r, null, 2);
  } catch (err) {
    out.textContent = JSON.stringify(err.body ?? { error: errText(err) }, null, 2);
  }
}

const SOURCE = { http: 'the console', mqtt: 'the city', cli: 'the CLI' };
let following = null;

async function loadConfig() {
  const c = await api('/api/config');
  const file = c.file ? ` The file ${c.file} is unchanged; editing it on the box wins at the next start.` : '';
  document.getElementById('config-file').textContent = !c.file
    ? 'Built-in demo config (read-only: start with --config FILE to edit).'
    : c.origin === 'applied'
      ? `Running the config applied by ${c.by} at ${when(Date.parse(c.at))}.${file}`
      : c.origin === 'trial'
        ? `Running, on probation, the config applied by ${c.by} at ${when(Date.parse(c.at))}.${file}`
        : `Running the file ${c.file}.`;
  document.getElementById('config-text').value = c.text;
  document.getElementById('config-apply').disabled = !c.editable || c.applying;
  showApply(c.apply);
  if (c.applying && c.apply && following !== c.apply.id) followApply(c.apply.id);
}

/** One line for where a change stands; its problems (why it was rolled back or refused) below. */
function showApply(a) {
  const status = document.getElementById('config-status');
  const out = document.getElementById('config-outcome');
  out.replaceChildren();
  if (!a) return;
  const who = `${a.actor} (${SOURCE[a.source] ?? a.source}${a.version ? `, version ${a.version}` : ''})`;
  const at = when(Date.parse(a.finishedAt ?? a.startedAt));
  let text;
  if (a.state === 'applying') {
    text =
      a.phase === 'watching'
        ? `applying: the new config runs on probation until ${when(Date.parse(a.watchUntil))}; it is kept if every bus stays open and the devices answer, else rolled back`
        : a.phase === 'rolling_back'
          ? 'the new config failed its watch: rolling back to the previous one…'
          : 'applying: starting the new config…';
  } else if (a.state === 'applied') text = `applied by ${who}, kept after its watch (${at})`;
  else if (a.state === 'rolled_back')
    text = `rolled back: the change by ${who} failed (${at}); the previous config runs`;
  else if (a.state === 'refused') text = `refused: the change by ${who} had problems; nothing changed (${at})`;
  else text = `failed: the change by ${who} failed and the previous config did not start again; the gateway restarts`;
  status.textContent = text;
  status.dataset.state = a.state;
  if (a.state !== 'applying' || a.phase === 'rolling_back')
    out.replaceChildren(...(a.problems ?? []).map((p) => h('li', {}, p)));
}

/** Asks until the change has an outcome; the server restarts during it, so errors just mean "ask again". */
async function followApply(id) {
  following = id;
  document.getElementById('config-apply').disabled = true;
  let misses = 0;
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, 1000));
      let a;
      try {
        a = await api(`/api/config/apply/${encodeURIComponent(id)}`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) {
          document.getElementById('config-status').textContent =
            'the gateway restarted during the change; see Recent events for its outcome';
          return;
        }
        if (++misses > 600) return;
        continue;
      }
      showApply(a);
      if (a.state !== 'applying') return;
    }
  } finally {
    following = null;
    await loadConfig().catch(() => {});
  }
}

/** Each problem names the key path (and line); clicking it selects that line in the editor. */
function showProblems(problems) {
  const ta = document.getElementById('config-text');
  document.getElementById('config-problems').replaceChildren(
    ...problems.map((p) =>
      h(
        'li',
        {
          dataset: { path: p.path },
          onclick: () => {
            if (!p.line) return;
            const lines = ta.value.split('\n');
            const start = lines.slice(0, p.line - 1).join('\n').length + (p.line > 1 ? 1 : 0);
            ta.focus();
            ta.setSelectionRange(start, start + (lines[p.line - 1] ?? '').length);
          },
        },
        `${p.path ? `${p.path}: ` : ''}${p.message}${p.line ? ` (line ${p.line})` : ''}`,
      ),
    ),
  );
}

async function validateConfig() {
  const r = await api('/api/config/validate', {
    method: 'POST',
    body: { text: document.getElementById('config-text').value },
  });
  showProblems(r.problems);
  document.getElementById('config-status').textContent = r.ok ? 'valid' : `${r.problems.length} problem(s)`;
  return r.ok;
}

async function applyConfig() {
  if (!(await validateConfig())) return;
  if (
    !confirm(
      'Apply this config? The gateway restarts its buses and polling with it, watches it for a while (buses open, devices answering, sync working) and rolls back to the current one by itself if it fails.',
    )
  )
    return;
  try {
    const r = await api('/api/config/apply', {
      method: 'POST',
      body: { text: document.getElementById('config-text').value },
    });
    showApply(r.status);
    await followApply(r.id);
  } catch (err) {
    if (err.body?.problems) showProblems(err.body.problems);
    document.getElementById('config-status').textContent = errText(err);
  }
}

function thresholdRow(th) {
  const input = (name, v) => h('input', { name, value: v ?? '', size: name === 'device' || name === 'point' ? 12 : 6 });
  return h(
    'tr',
    {},
    h('td', {}, input('device', th.device)),
    h('td', {}, input('point', th.point)),
    h('td', {}, input('below', th.below)),
    h('td', {}, input('above', th.above)),
    h(
      'td',
      {},
      h('button', { type: 'button', class: 'small', onclick: (e) => e.target.closest('tr').remove() }, 'Remove'),
    ),
  );
}

async function loadThresholds() {
  thresholds = await api('/api/thresholds');
  table(
    document.getElementById('threshold-table'),
    ['device', 'point', 'alert below', 'alert above', ''],
    thresholds.map(thresholdRow),
  );
}

async function saveThresholds() {
  const rows = [...document.querySelectorAll('#threshold-table tbody tr')].map((tr) => {
    const v = (n) => tr.querySelector(`[name=${n}]`).value.trim();
    const o = { device: v('device'), point: v('point') };
    if (v('below') !== '') o.below = Number(v('below'));
    if (v('above') !== '') o.above = Number(v('above'));
    return o;
  });
  try {
    await api('/api/thresholds', { method: 'PUT', body: { thresholds: rows } });
    document.getElementById('threshold-status').textContent = 'saved';
    await loadThresholds();
  } catch (err) {
    document.getElementById('threshold-status').textContent = errText(err);
  }
}

/** What the city has confirmed it stored (end-to-end acks), or that PUBACK stands in for it. */
function confirmationLine(agent, outbox) {
  if (agent.confirmMode === 'broker') {
    return h(
      'p',
      { id: 'confirmation' },
      agent.confirmFallback
        ? 'City confirmation: none received yet — the broker acknowledgement counts until the receiver answers.'
        : 'City confirmation: off (sync.confirm: false) — the broker acknowledgement counts as delivered.',
    );
  }
  const unconfirmed = agent.unconfirmed ?? outbox.unconfirmed;
  const oldest = agent.oldestUnconfirmedAgeS;
  return h(
    'p',
    { id: 'confirmation' },
    'Not yet confirmed by the city: ',
    h('strong', { id: 'unconfirmed' }, String(unconfirmed)),
    `${oldest != null ? ` (oldest ${oldest} s)` : ''}, confirmed up to seq ${agent.confirmed ?? outbox.confirmed}`,
    `, last ack ${agent.lastConfirmAt ? when(agent.lastConfirmAt) : 'never'}, resends ${agent.resends ?? 0}`,
  );
}

async function loadSync() {
  const [s, ev] = await Promise.all([api('/api/sync'), api('/api/events')]);
  const agent = s.agent && typeof s.agent === 'object' ? s.agent : {};
  const shown = [
    'connected',
    'backlog',
    'lastAckAt',
    'confirmMode',
    'unconfirmed',
    'oldestUnconfirmedAgeS',
    'lastConfirmAt',
    'resends',
  ];
  const extra = Object.entries(agent)
    .filter(([k, v]) => !shown.includes(k) && v !== null && typeof v !== 'object')
    .map(([k, v]) => `${k}: ${v}`)
    .join(' · ');
  document
    .getElementById('sync-status')
    .replaceChildren(
      h(
        'p',
        {},
        s.configured ? `Broker: ${s.url}` : 'Sync is not configured (no sync: section): readings stay on this gateway.',
      ),
      h(
        'p',
        {},
        'Readings waiting to send: ',
        h('strong', { id: 'backlog' }, String(agent.backlog ?? s.outbox.backlog)),
        ` (last seq ${s.outbox.lastSeq}, acknowledged up to ${s.outbox.cursor})`,
      ),
      s.configured
        ? h(
            'p',
            {},
            `Connected: ${agent.connected ? 'yes' : 'no'}${agent.lastAckAt ? `, last PUBACK ${when(agent.lastAckAt)}` : ''}`,
          )
        : null,
      s.configured ? confirmationLine(agent, s.outbox) : null,
      extra ? h('p', { class: 'muted' }, extra) : null,
      h('p', {}, `Gap events: ${s.gaps}`),
    );
  table(
    document.getElementById('gaps'),
    ['id', 'seqs', 'count', 'reason', 'when'],
    ev.gaps.map((g) =>
      h(
        'tr',
        {},
        h('td', {}, g.id),
        h('td', {}, `${g.firstSeq}–${g.lastSeq}`),
        h('td', {}, g.count),
        h('td', {}, g.reason),
        h('td', {}, when(g.ts)),
      ),
    ),
  );
  table(
    document.getElementById('events'),
    ['id', 'kind', 'when', 'data'],
    ev.events
      .slice()
      .reverse()
      .map((e) =>
        h(
          'tr',
          {},
          h('td', {}, e.id),
          h('td', {}, e.kind),
          h('td', {}, when(e.ts)),
          h('td', {}, JSON.stringify(e.data)),
        ),
      ),
  );
}

async function loadUsers() {
  const [users, tokens] = await Promise.all([api('/api/users'), api('/api/tokens')]);
  table(
    document.getElementById('user-table'),
    ['user', 'role', 'created', ''],
    users.map((u) =>
      h(
        'tr',
        { dataset: { user: u.name } },
        h('td', {}, u.name),
        h('td', {}, u.role),
        h('td', {}, u.createdAt),
        h('td', {}, h('button', { type: 'button', class: 'small', onclick: () => removeUser(u.name) }, 'Remove')),
      ),
    ),
  );
  table(
    document.getElementById('token-table'),
    ['id', 'label', 'created', 'by', ''],
    tokens.map((t) =>
      h(
        'tr',
        {},
        h('td', {}, t.id),
        h('td', {}, t.label),
        h('td', {}, t.createdAt),
        h('td', {}, t.createdBy),
        h('td', {}, h('button', { type: 'button', class: 'small', onclick: () => revokeToken(t.id) }, 'Revoke')),
      ),
    ),
  );
}

async function removeUser(name) {
  if (!confirm(`Remove user ${name}?`)) return;
  try {
    await api(`/api/users/${encodeURIComponent(name)}`, { method: 'DELETE' });
    await loadUsers();
  } catch (err) {
    toast(errText(err));
  }
}

async function revokeToken(id) {
  await api(`/api/tokens/${encodeURIComponent(id)}`, { method: 'DELETE' });
  await loadUsers();
}

async function loadLogs() {
  const lines = await api('/api/logs?n=200');
  document.getElementById('log-lines').textContent = lines
    .map(
      (l) =>
        `${l.time ?? ''} ${({ 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' })[l.level] ?? ''} ${l.msg ?? ''}${l.err ? ` — ${l.err}` : ''}`,
    )
    .join('\n');
}

function wire() {
  document.getElementById('logout').addEventListener('click', logout);
  wireSqlBox();
  wireUpdate();
  document.getElementById('refresh').addEventListener('click', () => loadDevices().catch((e) => toast(errText(e))));
  document.getElementById('cmd-device').addEventListener('change', fillPoints);
  document.getElementById('command-form').addEventListener('submit', sendCommand);
  document
    .getElementById('config-validate')
    .addEventListener('click', () => validateConfig().catch((e) => toast(errText(e))));
  document.getElementById('config-apply').addEventListener('click', () => applyConfig());
  document
    .getElementById('threshold-add')
    .addEventListener('click', () => document.querySelector('#threshold-table tbody').append(thresholdRow({})));
  document.getElementById('threshold-save').addEventListener('click', saveThresholds);
  document.getElementById('logs-refresh').addEventListener('click', () => loadLogs());
  document.getElementById('user-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    try {
      await api('/api/users', {
        method: 'POST',
        body: { name: f.get('name'), role: f.get('role'), password: f.get('password') },
      });
      e.target.reset();
      document.getElementById('user-status').textContent = 'added';
      await loadUsers();
    } catch (err) {
      document.getElementById('user-status').textContent = errText(err);
    }
  });
  document.getElementById('token-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const r = await api('/api/tokens', { method: 'POST', body: { label: f.get('label') } });
    document
      .getElementById('token-new')
      .replaceChildren('New token (shown once): ', h('code', { class: 'token' }, r.token));
    await loadUsers();
  });
}

async function main() {
  wire();
  await session();
  await Promise.all(
    [
      loadAlarms(),
      loadDevices(),
      loadConfig(),
      loadThresholds(),
      loadSync(),
      loadUpdate(),
      loadUsers(),
      loadLogs(),
    ].map((p) => p.catch((e) => toast(errText(e)))),
  );
  setInterval(() => {
    loadAlarms().catch(() => {});
    loadDevices().catch(() => {});
    loadSync().catch(() => {});
  }, 10_000);
}

main().catch(() => {});
