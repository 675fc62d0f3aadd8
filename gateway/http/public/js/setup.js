import { ApiError, api } from './api.js';
import { getLang, setLang, translatePage } from './i18n.js';

translatePage();
document.getElementById('lang').addEventListener('click', () => {
  setLang(getLang() === 'vi' ? 'en' : 'vi');
  translatePage();
});

// Asking makes the gateway (re)issue a code and log it when none is valid.
api('/api/setup')
  .then((s) => {
    if (!s.needed) location.href = '/login';
  })
  .catch(() => {});

const form = document.getElementById('setup');
const msg = document.getElementById('msg');
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  msg.textContent = '';
  const d = new FormData(form);
  try {
    await api('/api/setup', {
      method: 'POST',
      body: { code: d.get('code'), user: d.get('user'), password: d.get('password') },
    });
    location.href = '/console';
  } catch (err) {
    msg.textContent = err instanceof ApiError ? err.message : String(err);
  }
});
