// The console's Update section: the last update and its outcome, and the technician's upload of a
// release bundle (POST /api/update, the file as the body). The gateway checks it with the release
// key, installs it and restarts into it; a refusal comes back in one sentence.
import { ApiError, api, upload } from './api.js';

const errText = (err) => (err instanceof ApiError ? err.message : String(err));

function describeLast(last) {
  if (!last) return 'No update recorded on this gateway yet.';
  const what = [last.outcome, last.version, last.source ? `from the ${last.source}` : null].filter(Boolean).join(' ');
  const at = last.at ? ` (${new Date(last.at).toLocaleString('en-GB', { timeZone: 'Asia/Ho_Chi_Minh' })})` : '';
  return `Last update: ${what}${at}${last.reason ? ` — ${last.reason}` : ''}`;
}

export async function loadUpdate() {
  const s = await api('/api/update/progress');
  const busy = s.busy ? `An update${s.version ? ` to ${s.version}` : ''} from the ${s.source} is in progress. ` : '';
  document.getElementById('update-status').textContent = busy + describeLast(s.last);
  document.getElementById('update-install').disabled = s.busy;
}

async function install(e) {
  e.preventDefault();
  const file = document.getElementById('update-file').files[0];
  const out = document.getElementById('update-result');
  if (!file) return;
  const button = document.getElementById('update-install');
  button.disabled = true;
  out.textContent = `Uploading ${file.name} (${Math.round(file.size / 1024)} KiB) and checking it…`;
  try {
    const r = await upload('/api/update', file);
    out.textContent = `Installed ${r.version}${r.previous ? ` (was ${r.previous})` : ''}. The gateway is restarting into it; this page reconnects when it is back.`;
    setTimeout(() => location.reload(), 15_000);
  } catch (err) {
    out.textContent = `Not installed: ${errText(err).replace(/^not installed: /, '')}`;
    button.disabled = false;
  }
  await loadUpdate().catch(() => {});
}

export function wireUpdate() {
  document.getElementById('update-form').addEventListener('submit', install);
}
