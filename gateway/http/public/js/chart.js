import { api, h } from './api.js';
import { formatNumber, formatTime, t, translatePage } from './i18n.js';

// uPlot (served by the gateway from its own node_modules) is only fetched when a chart is opened,
// so the panel's first load stays small.
let loading = null;
function loadUPlot() {
  if (globalThis.uPlot) return Promise.resolve(globalThis.uPlot);
  loading ??= new Promise((resolve, reject) => {
    document.head.append(h('link', { rel: 'stylesheet', href: '/vendor/uPlot.min.css' }));
    const s = h('script', { src: '/vendor/uPlot.iife.min.js' });
    s.addEventListener('load', () => resolve(globalThis.uPlot));
    s.addEventListener('error', () => reject(new Error('chart library failed to load')));
    document.head.append(s);
  });
  return loading;
}

const RANGES = { '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 };
let current = null;
let plot = null;
let wired = false;

export async function showHistory(target, range = '24h') {
  current = { ...target, range };
  const box = document.getElementById('history-section');
  box.classList.remove('hidden');
  document.getElementById('history-title').textContent =
    `${t('history')}: ${target.label}${target.unit ? ` (${target.unit})` : ''}`;
  if (!wired) {
    wired = true;
    document.getElementById('history-close').addEventListener('click', () => {
      box.classList.add('hidden');
      plot?.destroy();
      plot = null;
    });
    for (const b of document.querySelectorAll('#history-tabs button'))
      b.addEventListener('click', () => showHistory(current, b.dataset.range));
  }
  for (const b of document.querySelectorAll('#history-tabs button'))
    b.classList.toggle('active', b.dataset.range === range);
  translatePage(box);
  box.scrollIntoView({ behavior: 'smooth', block: 'start' });
  const el = document.getElementById('chart');
  const width = Math.max(280, el.clientWidth || box.clientWidth - 24);
  const to = Date.now();
  const from = to - RANGES[range];
  const points = Math.min(600, Math.max(60, Math.round(width)));
  const [U, data] = await Promise.all([
    loadUPlot(),
    api(
      `/api/readings?device=${encodeURIComponent(target.device)}&point=${encodeURIComponent(target.point)}&from=${from}&to=${to}&points=${points}`,
    ),
  ]);
  if (current.device !== target.device || current.point !== target.point || current.range !== range) return;
  plot?.destroy();
  plot = null;
  el.replaceChildren();
  document.getElementById('chart-empty').classList.toggle('hidden', data.t.length > 0);
  el.dataset.points = String(data.t.length);
  if (data.t.length === 0) return;
  const long = range !== '24h';
  plot = new U(
    {
      width,
      height: 240,
      tzDate: (ts) => U.tzDate(new Date(ts * 1000), 'Asia/Ho_Chi_Minh'),
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { values: (_u, splits) => splits.map((s) => formatTime(s * 1000, long)) },
        { values: (_u, splits) => splits.map((v) => formatNumber(v, 1)), size: 50 },
      ],
      series: [
        { label: t('chart.time'), value: (_u, v) => (v === null ? '–' : formatTime(v * 1000, true)) },
        { label: t('chart.min'), stroke: '#90caf9', width: 1 },
        { label: t('chart.avg'), stroke: '#2e7d32', width: 2 },
        { label: t('chart.max'), stroke: '#ef9a9a', width: 1 },
      ],
    },
    [data.t.map((x) => x / 1000), data.min, data.avg, data.max],
    el,
  );
}
