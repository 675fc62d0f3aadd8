import { ApiError, api, h, logout, session, toast } from './api.js';
import { showHistory } from './chart.js';
import {
  formatAge,
  formatDateTime,
  formatNumber,
  getLang,
  pointLabel,
  setLang,
  setTimeZone,
  t,
  translatePage,
} from './i18n.js';

const STALE_MIN_MS = 90_000;
let panel = null;
const latest = new Map();
let renderQueued = false;

const key = (d, p) => `${d}\u0000${p}`;

// Qualities that mean the device did not answer. Any other non-good quality comes from a device
// that answered (a refused register, a value out of range): never shown as a lost connection.
const NO_ANSWER = new Set(['timeout', 'crc_error', 'device_offline', 'bus_error']);

function pointState(dev, l) {
  if (!l || l.ts === null || l.ts === undefined) return 'nodata';
  if (l.quality === 'unsupported') return 'unsupported';
  if (dev.state === 'offline' || dev.state === 'bus_error' || NO_ANSWER.has(l.quality)) return 'offline';
  if (l.quality && l.quality !== 'good') return 'error';
  if (Date.now() - l.ts > Math.max(3 * (dev.intervalMs ?? 30_000), STALE_MIN_MS)) return 'stale';
  return 'ok';
}

function alertOf(p, l) {
  const th = p.threshold;
  if (!th || !l || l.quality !== 'good' || typeof l.value !== 'number') return null;
  if (th.below !== undefined && l.value < th.below) return 'below';
  if (th.above !== undefined && l.value > th.above) return 'above';
  return null;
}

function alertText(point, dir) {
  const wetness = /moisture|humidity/.test(point);
  if (dir === 'below') return t(wetness ? 'alert.dry' : 'alert.low');
  return t(wetness ? 'alert.wet' : 'alert.high');
}

function fmtValue(v) {
  if (typeof v === 'number') return formatNumber(v, Math.abs(v) >= 100 ? 1 : 2);
  return v === null || v === undefined ? '–' : String(v);
}

function deviceCard(dev) {
  const items = dev.points.map((p) => {
    const l = latest.get(key(dev.id, p.name));
    const st = pointState(dev, l);
    const al = st === 'ok' || st === 'stale' ? alertOf(p, l) : null;
    const label = pointLabel(dev.profile, p.name);
    const status =
      st === 'nodata'
        ? t('state.nodata')
        : st === 'unsupported'
          ? t('state.unsupported')
          : st === 'error'
            ? `${t('state.error')} · ${formatAge(Date.now() - l.ts)}`
            : st === 'offline'
              ? `${t('state.offline')} · ${formatAge(Date.now() - l.ts)}`
              : st === 'stale'
                ? `${t('state.stale')} · ${formatAge(Date.now() - l.ts)}`
                : formatAge(Date.now() - l.ts);
    return h(
      'li',
      {
        class: [st !== 'ok' ? st : '', al ? 'alert' : ''].join(' ').trim() || null,
        dataset: { device: dev.id, point: p.name, state: st },
        title: l?.ts ? formatDateTime(l.ts) : null,
        onclick: () =>
          showHistory({ device: dev.id, point: p.name, label: `${dev.name ?? dev.id} · ${label}`, unit: p.unit }),
      },
      h('span', { class: 'label' }, label),
      h(
        'span',
        { class: 'val' },
        st === 'nodata' || st === 'unsupported' ? '–' : fmtValue(l.value),
        p.unit ? h('span', { class: 'unit' }, p.unit) : null,
      ),
      h('span', { class: 'age' }, status),
      al
        ? h(
            'span',
            { class: 'warn' },
            `⚠ ${t('alert')}: ${alertText(p.name, al)} (${t(`alert.threshold.${al}`, { v: formatNumber(p.threshold[al]) })}${p.unit ? ` ${p.unit}` : ''})`,
          )
        : null,
    );
  });
  const anyAlert = dev.points.some((p) => alertOf(p, latest.get(key(dev.id, p.name))));
  const state = dev.state ?? 'nodata';
  return h(
    'article',
    { class: 'card device', dataset: { device: dev.id } },
    h(
      'h3',
      {},
      h('span', {}, dev.name ?? dev.id),
      anyAlert
        ? h('span', { class: 'badge alert' }, t('alert'))
        : h('span', { class: `badge ${state}` }, t(`state.${state}`)),
    ),
    h('ul', { class: 'values' }, items),
  );
}

function relayCard(r) {
  const l = latest.get(key(r.device, r.point)) ?? r;
  const on = l.value === 1 || l.value === true;
  const known = l.value !== null && l.value !== undefined && (l.quality ?? 'good') === 'good';
  const btn = h(
    'button',
    {
      type: 'button',
      class: `big ${on ? 'off' : ''}`,
      disabled: !panel.commandsAvailable || undefined,
      title: panel.commandsAvailable ? null : t('relay.noRouter'),
      dataset: { device: r.device, point: r.point },
      onclick: () => confirmSwitch(r, !on),
    },
    on ? t('relay.turnOff') : t('relay.turnOn'),
  );
  return h(
    'article',
    { class: 'card relay', dataset: { device: r.device, point: r.point } },
    h(
      'div',
      {},
      h('strong', {}, r.label),
      h(
        'div',
        { class: `state ${on ? 'on' : ''}` },
        known ? (on ? t('relay.on') : t('relay.off')) : t('relay.unknown'),
      ),
    ),
    btn,
  );
}

function confirmSwitch(r, turnOn) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = t(turnOn ? 'relay.confirmOn' : 'relay.confirmOff', {
    name: r.label,
  });
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  const close = () => {
    ok.onclick = null;
    cancel.onclick = null;
    dlg.close();
  };
  cancel.onclick = close;
  ok.onclick = async () => {
    close();
    try {
      const res = await api('/api/commands', {
        method: 'POST',
        body: { device: r.device, point: r.point, value: turnOn },
      });
      const v = res.readBack ?? (turnOn ? 1 : 0);
      latest.set(key(r.device, r.point), {
        value: typeof v === 'boolean' ? (v ? 1 : 0) : v,
        quality: 'good',
        ts: Date.now(),
      });
      toast(t('relay.done', { name: r.label, state: turnOn ? t('relay.on') : t('relay.off') }));
      render();
    } catch (err) {
      toast(
        t('relay.failed', { msg: err instanceof ApiError ? (err.body?.message ?? err.message) : t('error.network') }),
        6000,
      );
    }
  };
  dlg.showModal();
}

function alarmBanner() {
  const box = document.getElementById('alarm-banner');
  const list = panel.alarms ?? [];
  box.classList.toggle('hidden', list.length === 0);
  box.replaceChildren(
    ...list.map((a) =>
      h(
        'p',
        { class: `alarm ${a.state === 'active' ? a.severity : 'fault'}`, dataset: { alarm: a.id } },
        h('strong', {}, `${a.state === 'active' ? t('alarm.active') : t('alarm.fault')}: ${a.name ?? a.id}`),
        a.state === 'active' && typeof a.value === 'number'
          ? ` · ${formatNumber(a.value, 1)} · ${t('alarm.since', { t: formatDateTime(a.since) })}`
          : a.fault
            ? ` · ${t('alarm.sensorSilent', { device: a.device })}`
            : '',
      ),
    ),
  );
}

function render() {
  renderQueued = false;
  if (!panel) return;
  document.getElementById('title').textContent = panel.gateway.name;
  alarmBanner();
  const irr = document.getElementById('irrigation');
  document.getElementById('irrigation-section').classList.toggle('hidden', panel.irrigation.length === 0);
  irr.replaceChildren(...panel.irrigation.map(relayCard));
  const zones = document.getElementById('zones');
  zones.replaceChildren(
    ...panel.zones.map((z) =>
      h(
        'section',
        { class: 'zone', dataset: { zone: z.zone ?? '' } },
        h('h2', {}, z.zone ?? t('zone.other')),
        h('div', { class: 'grid' }, z.devices.map(deviceCard)),
      ),
    ),
  );
}

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(render, 300);
}

async function loadPanel() {
  try {
    panel = await api('/api/panel');
    setTimeZone(panel.gateway.timezone);
    for (const z of panel.zones)
      for (const d of z.devices)
        for (const p of d.points) {
          const k = key(d.id, p.name);
          const have = latest.get(k);
          if (p.ts !== null && (!have || have.ts <= p.ts))
            latest.set(k, { value: p.value, quality: p.quality, ts: p.ts });
        }
    for (const r of panel.irrigation) {
      const k = key(r.device, r.point);
      const have = latest.get(k);
      if (r.ts !== null && (!have || have.ts <= r.ts)) latest.set(k, { value: r.value, quality: r.quality, ts: r.ts });
    }
    document.getElementById('error').textContent = '';
    render();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401))
      document.getElementById('error').textContent = t('error.network');
  }
}

function live() {
  const dot = document.getElementById('live');
  const es = new EventSource('/api/live');
  es.addEventListener('open', () => {
    dot.classList.add('on');
    dot.title = t('live.on');
  });
  es.addEventListener('error', () => {
    dot.classList.remove('on');
    dot.title = t('live.off');
  });
  es.addEventListener('readings', (e) => {
    for (const [device, point, value, quality, ts] of JSON.parse(e.data))
      latest.set(key(device, point), { value, quality, ts });
    queueRender();
  });
  // an alarm raised or cleared: fetch the banner at once rather than at the next refresh
  es.addEventListener('alarm', () => loadPanel());
  es.addEventListener('health', (e) => {
    const hl = JSON.parse(e.data);
    for (const z of panel?.zones ?? []) for (const d of z.devices) if (d.id === hl.device) d.state = hl.state;
    queueRender();
  });
}

async function main() {
  translatePage();
  document.getElementById('lang').addEventListener('click', () => {
    setLang(getLang() === 'vi' ? 'en' : 'vi');
    translatePage();
    render();
  });
  document.getElementById('logout').addEventListener('click', logout);
  await session();
  await loadPanel();
  live();
  setInterval(render, 15_000);
  setInterval(loadPanel, 30_000);
}

main().catch(() => {});
