import { ApiError, api } from './api.js';
import { getLang, setLang, t, translatePage } from './i18n.js';

translatePage();
document.getElementById('lang').addEventListener('click', () => {
  setLang(getLang() === 'vi' ? 'en' : 'vi');
  translatePage();
});

const form = document.getElementById('login');
const msg = document.getElementById('msg');
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  msg.textContent = '';
  const data = new FormData(form);
  try {
    const s = await api('/api/login', {
      method: 'POST',
      body: { user: data.get('user'), password: data.get('password') },
    });
    const next = new URLSearchParams(location.search).get('next');
    location.href = next === '/console' ? '/console' : s.role === 'technician' && next !== '/' ? '/console' : '/';
  } catch (err) {
    if (err instanceof ApiError && err.status === 429)
      msg.textContent = t('login.wait', { s: err.body?.retryAfterS ?? 30 });
    else if (err instanceof ApiError && err.status === 401) msg.textContent = t('login.failed');
    else msg.textContent = err instanceof ApiError ? err.message : t('error.network');
  }
});
