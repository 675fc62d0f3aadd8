// Message catalogues of the farmer panel and the login pages: Vietnamese first, English second.
// Words follow what farmers and city staff in Đà Lạt say (see docs/panel.md).
const vi = {
  'app.title': 'Bảng điều khiển nhà kính',
  'lang.switch': 'English',
  logout: 'Đăng xuất',
  'login.title': 'Đăng nhập',
  'login.user': 'Tên đăng nhập',
  'login.password': 'Mật khẩu',
  'login.submit': 'Đăng nhập',
  'login.failed': 'Sai tên đăng nhập hoặc mật khẩu',
  'login.wait': 'Thử lại sau {s} giây',
  'setup.title': 'Thiết lập lần đầu',
  'setup.intro':
    'Chưa có tài khoản nào. Nhập mã thiết lập in trong nhật ký (log) của bộ gateway, hoặc mã in ra khi làm gói cài đặt (provisioning) cho gateway này, để tạo tài khoản kỹ thuật viên đầu tiên.',
  'setup.code': 'Mã thiết lập',
  'setup.user': 'Tên đăng nhập kỹ thuật viên',
  'setup.password': 'Mật khẩu (ít nhất 8 ký tự)',
  'setup.submit': 'Tạo tài khoản',
  'live.on': 'đang kết nối',
  'live.off': 'mất kết nối',
  'zone.other': 'Khác',
  irrigation: 'Tưới nước',
  'relay.on': 'Đang mở',
  'relay.off': 'Đang đóng',
  'relay.unknown': 'Chưa rõ trạng thái',
  'relay.turnOn': 'Mở van',
  'relay.turnOff': 'Đóng van',
  'relay.confirmOn': 'Mở {name}?',
  'relay.confirmOff': 'Đóng {name}?',
  'relay.done': 'Đã gửi lệnh: {name} {state}',
  'relay.failed': 'Lệnh không thực hiện được: {msg}',
  'relay.noRouter': 'Chưa thể điều khiển (bộ định tuyến lệnh chưa chạy)',
  confirm: 'Xác nhận',
  cancel: 'Hủy',
  'state.ok': 'đang kết nối',
  'state.degraded': 'chập chờn',
  'state.offline': 'mất kết nối',
  // the gateway cannot reach the device's wiring (its RS-485 adapter): for a farmer, connection lost
  'state.bus_error': 'mất kết nối',
  'state.not_polled': 'chưa có dữ liệu',
  'state.stale': 'dữ liệu cũ',
  'state.nodata': 'chưa có dữ liệu',
  'state.unsupported': 'thiết bị không hỗ trợ',
  'alarm.active': 'CẢNH BÁO',
  'alarm.fault': 'Cảm biến mất tín hiệu',
  'alarm.since': 'từ {t}',
  'alarm.sensorSilent': 'không nhận được dữ liệu từ {device}, chưa thể báo hết cảnh báo',
  'state.error': 'lỗi đọc',
  'age.seconds': 'cập nhật {n} giây trước',
  'age.minutes': 'cập nhật {n} phút trước',
  'age.hours': 'cập nhật {n} giờ trước',
  'age.days': 'cập nhật {n} ngày trước',
  alert: 'Cảnh báo',
  'alert.dry': 'quá khô',
  'alert.wet': 'quá ẩm',
  'alert.low': 'quá thấp',
  'alert.high': 'quá cao',
  'alert.threshold.below': 'ngưỡng dưới {v}',
  'alert.threshold.above': 'ngưỡng trên {v}',
  history: 'Lịch sử',
  'history.24h': '24 giờ qua',
  'history.7d': '7 ngày qua',
  'history.30d': '30 ngày qua',
  'history.none': 'Chưa có dữ liệu trong khoảng này',
  'history.close': 'Đóng',
  'chart.time': 'Thời gian',
  'chart.avg': 'trung bình',
  'chart.min': 'thấp nhất',
  'chart.max': 'cao nhất',
  'error.network': 'Không kết nối được với bộ gateway',
  'point.moisture': 'Độ ẩm đất',
  'point.temperature': 'Nhiệt độ',
  'point.soil.temperature': 'Nhiệt độ đất',
  'point.air.temperature': 'Nhiệt độ không khí',
  'point.humidity': 'Độ ẩm không khí',
  'point.ec': 'Độ dẫn điện (EC)',
  'point.ph': 'Độ pH',
  'point.nitrogen': 'Đạm (N)',
  'point.phosphorus': 'Lân (P)',
  'point.potassium': 'Kali (K)',
  'point.voltage': 'Điện áp',
  'point.current': 'Dòng điện',
  'point.active_power': 'Công suất',
  'point.apparent_power': 'Công suất biểu kiến',
  'point.reactive_power': 'Công suất phản kháng',
  'point.power_factor': 'Hệ số công suất',
  'point.frequency': 'Tần số',
  'point.phase_angle': 'Góc pha',
  'point.lamp_status': 'Trạng thái đèn',
  'point.import_energy': 'Điện năng tiêu thụ',
  'point.export_energy': 'Điện năng phát ngược',
  'point.total_energy': 'Tổng điện năng',
  'point.brightness': 'Độ sáng',
  'point.intensity': 'Lưu lượng xe',
  'point.occupancy': 'Tỷ lệ chiếm dụng',
  'point.average_speed': 'Tốc độ trung bình',
  'point.light': 'Ánh sáng',
  'point.lux': 'Ánh sáng',
};

const en = {
  'app.title': 'Greenhouse panel',
  'lang.switch': 'Tiếng Việt',
  logout: 'Log out',
  'login.title': 'Log in',
  'login.user': 'User name',
  'login.password': 'Password',
  'login.submit': 'Log in',
  'login.failed': 'Wrong user name or password',
  'login.wait': 'Try again in {s} s',
  'setup.title': 'First-time setup',
  'setup.intro':
    "No account exists yet. Enter the setup code printed in the gateway's log, or the one printed when this gateway's provisioning bundle was made, to create the first technician account.",
  'setup.code': 'Setup code',
  'setup.user': 'Technician user name',
  'setup.password': 'Password (at least 8 characters)',
  'setup.submit': 'Create account',
  'live.on': 'online',
  'live.off': 'connection lost',
  'zone.other': 'Other',
  irrigation: 'Irrigation',
  'relay.on': 'Open',
  'relay.off': 'Closed',
  'relay.unknown': 'State unknown',
  'relay.turnOn': 'Open valve',
  'relay.turnOff': 'Close valve',
  'relay.confirmOn': 'Open {name}?',
  'relay.confirmOff': 'Close {name}?',
  'relay.done': 'Command sent: {name} {state}',
  'relay.failed': 'The command failed: {msg}',
  'relay.noRouter': 'Switching is not available yet (command router not running)',
  confirm: 'Confirm',
  cancel: 'Cancel',
  'state.ok': 'online',
  'state.degraded': 'unstable',
  'state.offline': 'offline',
  'state.bus_error': 'offline',
  'state.not_polled': 'no data',
  'state.stale': 'stale',
  'state.nodata': 'no data',
  'state.unsupported': 'not supported by the device',
  'alarm.active': 'ALARM',
  'alarm.fault': 'Sensor silent',
  'alarm.since': 'since {t}',
  'alarm.sensorSilent': 'no data from {device}; the alarm cannot be called off',
  'state.error': 'read error',
  'age.seconds': 'updated {n} s ago',
  'age.minutes': 'updated {n} min ago',
  'age.hours': 'updated {n} h ago',
  'age.days': 'updated {n} days ago',
  alert: 'Alert',
  'alert.dry': 'too dry',
  'alert.wet': 'too wet',
  'alert.low': 'too low',
  'alert.high': 'too high',
  'alert.threshold.below': 'lower limit {v}',
  'alert.threshold.above': 'upper limit {v}',
  history: 'History',
  'history.24h': 'Last 24 hours',
  'history.7d': 'Last 7 days',
  'history.30d': 'Last 30 days',
  'history.none': 'No data in this range yet',
  'history.close': 'Close',
  'chart.time': 'Time',
  'chart.avg': 'average',
  'chart.min': 'min',
  'chart.max': 'max',
  'error.network': 'Cannot reach the gateway',
  'point.moisture': 'Soil moisture',
  'point.temperature': 'Temperature',
  'point.soil.temperature': 'Soil temperature',
  'point.air.temperature': 'Air temperature',
  'point.humidity': 'Air humidity',
  'point.ec': 'Electrical conductivity (EC)',
  'point.ph': 'pH',
  'point.nitrogen': 'Nitrogen (N)',
  'point.phosphorus': 'Phosphorus (P)',
  'point.potassium': 'Potassium (K)',
  'point.voltage': 'Voltage',
  'point.current': 'Current',
  'point.active_power': 'Power',
  'point.apparent_power': 'Apparent power',
  'point.reactive_power': 'Reactive power',
  'point.power_factor': 'Power factor',
  'point.frequency': 'Frequency',
  'point.phase_angle': 'Phase angle',
  'point.lamp_status': 'Lamp status',
  'point.import_energy': 'Energy used',
  'point.export_energy': 'Energy exported',
  'point.total_energy': 'Total energy',
  'point.brightness': 'Brightness',
  'point.intensity': 'Traffic flow',
  'point.occupancy': 'Occupancy',
  'point.average_speed': 'Average speed',
  'point.light': 'Light',
  'point.lux': 'Light',
};

export const catalogues = { vi, en };
let lang = localStorage.getItem('lang') === 'en' ? 'en' : 'vi';
let timeZone = 'Asia/Ho_Chi_Minh';

export function getLang() {
  return lang;
}
export function setLang(l) {
  lang = l === 'en' ? 'en' : 'vi';
  localStorage.setItem('lang', lang);
  document.documentElement.lang = lang;
}
export function setTimeZone(tz) {
  if (tz) timeZone = tz;
}

/** t('age.minutes', { n: 3 }) → "cập nhật 3 phút trước" */
export function t(key, vars = {}) {
  const s = catalogues[lang][key] ?? catalogues.vi[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_m, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

function locale() {
  return lang === 'vi' ? 'vi-VN' : 'en-GB';
}

export function formatNumber(v, maxDigits = 2) {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: maxDigits }).format(v);
}

export function formatDateTime(ms) {
  return new Intl.DateTimeFormat(locale(), { timeZone, dateStyle: 'short', timeStyle: 'short' }).format(new Date(ms));
}

export function formatTime(ms, withDate) {
  const o = withDate
    ? { timeZone, day: '2-digit', month: '2-digit', hour: '2-digit', minute: '2-digit' }
    : { timeZone, hour: '2-digit', minute: '2-digit' };
  return new Intl.DateTimeFormat(locale(), o).format(new Date(ms));
}

export function formatAge(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return t('age.seconds', { n: s });
  if (s < 3600) return t('age.minutes', { n: Math.floor(s / 60) });
  if (s < 86400) return t('age.hours', { n: Math.floor(s / 3600) });
  return t('age.days', { n: Math.floor(s / 86400) });
}

/** Label of a point; temperature says soil or air by the device profile. */
export function pointLabel(profile, point) {
  if (point === 'temperature') {
    if (/soil|jxbs/.test(profile)) return t('point.soil.temperature');
    if (/md02|sht|climate|air/.test(profile)) return t('point.air.temperature');
  }
  const k = `point.${point}`;
  return catalogues[lang][k] || catalogues.vi[k] ? t(k) : point.replace(/_/g, ' ');
}

/** Fills every [data-i18n] element of a static page. */
export function translatePage(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
}
