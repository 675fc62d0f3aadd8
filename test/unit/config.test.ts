import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { closest } from '../../gateway/config/did-you-mean.js';
import {
  configError,
  configJsonSchema,
  demoConfigPath,
  formatDuration,
  formatProblems,
  formatSize,
  type GatewayConfig,
  loadConfigFile,
  loadConfigOrThrow,
  packageRoot,
  parseConfigText,
  parseDuration,
  parseSize,
} from '../../gateway/config/index.js';
import type { DeviceProfile } from '../../gateway/core/point.js';
import { loadProfiles } from '../../hardware/profiles.js';

const FIXTURES = resolve(__dirname, '../fixtures/configs');
let profiles: Map<string, DeviceProfile>;
let tmp: string;

beforeAll(() => {
  profiles = loadProfiles();
  tmp = mkdtempSync(join(tmpdir(), 'langbiang-config-'));
  writeFileSync(join(tmp, 'mqtt-password'), 's3cret\n');
  writeFileSync(join(tmp, 'mqtt-user'), 'dl-gw-0001\n');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Problems of a config text as the CLI prints them. */
function problemsOf(
  text: string,
  opts: { profiles?: Map<string, DeviceProfile> | null; baseDir?: string } = {},
): string {
  const result = parseConfigText(text, {
    file: 'config.yaml',
    baseDir: opts.baseDir ?? tmp,
    ...(opts.profiles === null ? {} : { profiles: opts.profiles ?? profiles }),
  });
  if (result.ok) return '(valid)';
  return formatProblems(result.problems);
}

function parseOk(text: string, opts: { baseDir?: string } = {}): GatewayConfig {
  const result = parseConfigText(text, { file: 'config.yaml', profiles, baseDir: opts.baseDir ?? tmp });
  if (!result.ok) throw new Error(`expected a valid config, got:\n${formatProblems(result.problems)}`);
  return result.config;
}

const GW = 'gateway: { id: gw-1 }\n';
const RTU = 'buses:\n  - { id: rs485-1, type: modbus-rtu, port: /dev/ttyUSB0 }\n';
const RTU_GPIO = 'buses:\n  - { id: rs485-1, type: modbus-rtu, port: /dev/ttyUSB0 }\n  - { id: gpio, type: gpio }\n';
const SOIL = (extra = '') => `  - { id: soil-a1, profile: comwintop-cwt-soil, bus: rs485-1, unit: 1${extra} }\n`;

interface BrokenCase {
  name: string;
  yaml: string;
  expect: string | string[];
}

const broken: BrokenCase[] = [
  {
    name: 'YAML syntax error: line and column',
    yaml: 'gateway:\n  id: gw-1\n  name: a: b\nbuses: []\n',
    expect: 'config.yaml: line 3, column 9: Nested mappings are not allowed in compact mappings',
  },
  {
    name: 'YAML tab indentation',
    yaml: 'gateway:\n  id: gw-1\n\tname: x\n',
    expect: 'config.yaml: line 3, column 1: Tabs are not allowed as indentation',
  },
  {
    name: 'YAML duplicate key',
    yaml: 'gateway:\n  id: gw-1\n  id: gw-2\n',
    expect: 'config.yaml: line 3, column 3: Map keys must be unique',
  },
  { name: 'empty file', yaml: '', expect: 'config.yaml: the file is empty' },
  { name: 'only comments', yaml: '# nothing here yet\n', expect: 'config.yaml: the file is empty' },
  {
    name: 'top level is a list',
    yaml: '- gateway\n- buses\n',
    expect: 'config.yaml: the top level must be a mapping (gateway:, buses:, devices:), got a list',
  },
  {
    name: 'top level is a string',
    yaml: 'hello\n',
    expect: 'the top level must be a mapping (gateway:, buses:, devices:), got a string',
  },
  { name: 'missing gateway', yaml: 'buses: []\n', expect: 'gateway: required' },
  { name: 'missing gateway.id', yaml: 'gateway:\n  name: x\n', expect: 'gateway.id: required (line 1)' },
  {
    name: 'gateway.id with uppercase and spaces',
    yaml: 'gateway: { id: DL GW }\n',
    expect: 'gateway.id: "DL GW" is not a valid gateway id',
  },
  {
    name: 'bad timezone',
    yaml: 'gateway:\n  id: gw-1\n  timezone: Mars/Olympus\n',
    expect: 'gateway.timezone: "Mars/Olympus" is not an IANA time zone (e.g. Asia/Ho_Chi_Minh, UTC) (line 3)',
  },
  {
    name: 'latitude out of range',
    yaml: 'gateway: { id: gw-1, location: { lat: 100, lon: 108 } }\n',
    expect: 'gateway.location.lat: must be at most 90, got 100',
  },
  {
    name: 'wrong type: baudRate',
    yaml: `${GW}buses:\n  - id: rs485-1\n    type: modbus-rtu\n    port: /dev/ttyUSB0\n    baudRate: fast\n`,
    expect: 'buses.0.baudRate: expected a number, got "fast" (line 6)',
  },
  {
    name: 'non-standard baud rate',
    yaml: `${GW}buses:\n  - { id: rs485-1, type: modbus-rtu, port: /dev/ttyUSB0, baudRate: 9601 }\n`,
    expect: 'buses.0.baudRate: expected one of 1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200, got 9601',
  },
  {
    name: 'wrong type: port is a string',
    yaml: `${GW}panel: { port: "80" }\n`,
    expect: 'panel.port: expected a number, got "80" (line 2)',
  },
  {
    name: 'wrong type: enabled yes (YAML 1.2)',
    yaml: `${GW}${RTU}devices:\n${SOIL(', enabled: yes')}`,
    expect: 'devices.0.enabled: expected true or false, got "yes"',
  },
  {
    name: 'unknown key with did-you-mean',
    yaml: `${GW}buses:\n  - id: rs485-1\n    type: modbus-rtu\n    port: /dev/ttyUSB0\n    baudrate: 9600\n`,
    expect: 'buses.0.baudrate: unknown key (did you mean baudRate?) (line 6)',
  },
  {
    name: 'unknown top-level key',
    yaml: `${GW}device: []\n`,
    expect: 'device: unknown key (did you mean devices?) (line 2)',
  },
  {
    name: 'unknown key, nothing close',
    yaml: `${GW}panel: { colour: green }\n`,
    expect: 'panel.colour: unknown key (expected one of port, host, irrigation, publicParking)',
  },
  {
    name: 'irrigation relay that is not writable',
    yaml: `${GW}${RTU}devices:\n${SOIL()}panel:\n  irrigation:\n    - { device: soil-a1, point: moisture }\n    - { device: valvez, point: relay_1 }\n`,
    expect: [
      'panel.irrigation.0.point: point "moisture" of comwintop-cwt-soil is read-only (line 8)',
      'panel.irrigation.1.device: unknown device "valvez" (known: soil-a1) (line 9)',
    ],
  },
  {
    name: 'inline password is refused',
    yaml: `${GW}sync: { url: "mqtt://127.0.0.1:1883", username: u, password: hunter2 }\n`,
    expect: 'sync.password: unknown key (secrets are read from files: use passwordFile)',
  },
  {
    name: 'unknown bus type',
    yaml: `${GW}buses:\n  - { id: b1, type: modbus-rtv, port: /dev/ttyUSB0 }\n`,
    expect:
      'buses.0.type: expected one of modbus-rtu, modbus-tcp, gpio, firmata, got "modbus-rtv" (did you mean modbus-rtu?)',
  },
  {
    name: 'missing bus type',
    yaml: `${GW}buses:\n  - { id: b1 }\n`,
    expect: 'buses.0.type: required (one of modbus-rtu, modbus-tcp, gpio, firmata)',
  },
  {
    name: 'missing modbus-tcp host',
    yaml: `${GW}buses:\n  - { id: b1, type: modbus-tcp }\n`,
    expect: 'buses.0.host: required',
  },
  {
    name: 'bad duration',
    yaml: `${GW}buses:\n  - { id: b1, type: modbus-rtu, port: /dev/ttyUSB0, timeout: 5 minutes }\n`,
    expect: 'buses.0.timeout: "5 minutes" is not a duration (use e.g. 500ms, 30s, 5m, 2h, 90d)',
  },
  {
    name: 'duration of the wrong type',
    yaml: `${GW}${RTU}devices:\n${SOIL(', interval: true')}`,
    expect: 'devices.0.interval: expected a duration like 30s or 500ms, got true',
  },
  {
    name: 'interval below 100ms',
    yaml: `${GW}${RTU}devices:\n${SOIL(', interval: 50ms')}`,
    expect: 'devices.0.interval: must be at least 100ms, got 50ms',
  },
  {
    name: 'bad size',
    yaml: `${GW}storage:\n  maxBytes: 2 gigs\n`,
    expect: 'storage.maxBytes: "2 gigs" is not a size (use e.g. 512MiB, 2GiB) (line 3)',
  },
  {
    name: 'bad broker URL',
    yaml: `${GW}sync: { url: "http://city.example" }\n`,
    expect: 'sync.url: "http://city.example" is not a broker URL (use mqtt://, mqtts://, ws:// or wss://)',
  },
  {
    name: 'ngsi-ld is not a gateway format',
    yaml: `${GW}sync: { url: "mqtt://127.0.0.1:1883", format: ngsi-ld }\n`,
    expect: 'sync.format: "ngsi-ld" is not a gateway format',
  },
  {
    name: 'sparkplug without a group id',
    yaml: `${GW}sync: { url: "mqtt://127.0.0.1:1883", format: sparkplug }\n`,
    expect: 'sync.sparkplug.groupId: required when sync.format is sparkplug',
  },
  {
    name: 'sparkplug group id with a topic separator',
    yaml: `${GW}sync: { url: "mqtt://127.0.0.1:1883", format: sparkplug, sparkplug: { groupId: "a/b" } }\n`,
    expect: 'sync.sparkplug.groupId: must not contain /, + or #',
  },
  {
    name: 'thingsboard without a token file',
    yaml: `${GW}sync: { url: "mqtt://127.0.0.1:1883", format: thingsboard }\n`,
    expect: 'sync.thingsboard.tokenFile: required when sync.format is thingsboard',
  },
  {
    name: 'thingsboard with a password',
    yaml: `${GW}sync: { url: "mqtt://127.0.0.1:1883", format: thingsboard, username: u, passwordFile: mqtt-password, thingsboard: { tokenFile: mqtt-password } }\n`,
    expect: 'sync.passwordFile: not used with sync.format thingsboard',
  },
  {
    name: 'thingsboard token file unreadable',
    yaml: `${GW}sync: { url: "mqtt://127.0.0.1:1883", format: thingsboard, thingsboard: { tokenFile: /nonexistent/tb-token } }\n`,
    expect: 'sync.thingsboard.tokenFile: cannot read /nonexistent/tb-token',
  },
  {
    name: 'duplicate bus id',
    yaml: `${GW}buses:\n  - { id: rs485-1, type: modbus-rtu, port: /dev/ttyUSB0 }\n  - { id: rs485-1, type: modbus-tcp, host: 127.0.0.1 }\n`,
    expect: 'buses.1.id: duplicate bus id "rs485-1" (also buses.0) (line 4)',
  },
  {
    name: 'duplicate device id',
    yaml: `${GW}${RTU}devices:\n${SOIL()}  - { id: soil-a1, profile: xy-md02, bus: rs485-1, unit: 2 }\n`,
    expect: 'devices.1.id: duplicate device id "soil-a1" (also devices.0) (line 6)',
  },
  {
    name: 'unknown bus',
    yaml: `${GW}${RTU}devices:\n  - { id: d1, profile: xy-md02, bus: rs485-2, unit: 1 }\n`,
    expect: 'devices.0.bus: unknown bus "rs485-2" (did you mean rs485-1?)',
  },
  {
    name: 'unknown profile',
    yaml: `${GW}${RTU}devices:\n  - { id: d1, profile: comwintop-soil, bus: rs485-1, unit: 1 }\n`,
    expect: 'devices.0.profile: unknown profile "comwintop-soil" (did you mean comwintop-cwt-soil?)',
  },
  {
    name: 'gpio profile on a modbus bus',
    yaml: `${GW}${RTU}devices:\n  - { id: loop-n1, profile: loop-detector, bus: rs485-1, pins: { presence: 17 } }\n`,
    expect:
      'devices.0.profile: profile loop-detector is a gpio profile and needs a gpio bus, but bus "rs485-1" is modbus-rtu',
  },
  {
    name: 'modbus profile on a gpio bus',
    yaml: `${GW}${RTU_GPIO}devices:\n  - { id: d1, profile: xy-md02, bus: gpio }\n`,
    expect:
      'devices.0.profile: profile xy-md02 is a modbus profile and needs a modbus-rtu or modbus-tcp bus, but bus "gpio" is gpio',
  },
  {
    name: 'unit 0',
    yaml: `${GW}${RTU}devices:\n  - { id: d1, profile: xy-md02, bus: rs485-1, unit: 0 }\n`,
    expect: 'devices.0.unit: must be a Modbus unit id 1–247, got 0',
  },
  {
    name: 'unit 248',
    yaml: `${GW}${RTU}devices:\n  - { id: d1, profile: xy-md02, bus: rs485-1, unit: 248 }\n`,
    expect: 'devices.0.unit: must be a Modbus unit id 1–247, got 248',
  },
  {
    name: 'unit not a whole number',
    yaml: `${GW}${RTU}devices:\n  - { id: d1, profile: xy-md02, bus: rs485-1, unit: 1.5 }\n`,
    expect: 'devices.0.unit: expected a whole number, got 1.5',
  },
  {
    name: 'unit missing on a modbus bus',
    yaml: `${GW}${RTU}devices:\n  - { id: d1, profile: xy-md02, bus: rs485-1 }\n`,
    expect: 'devices.0.unit: required for a device on Modbus bus "rs485-1" (1–247)',
  },
  {
    name: 'duplicate unit on one bus',
    yaml: `${GW}${RTU}devices:\n${SOIL()}  - { id: climate-1, profile: xy-md02, bus: rs485-1, unit: 1 }\n`,
    expect: 'devices.1.unit: unit 1 on bus "rs485-1" is already used by device "soil-a1" (line 6)',
  },
  {
    name: 'serial port used by two buses',
    yaml: `${GW}buses:\n  - { id: rs485-1, type: modbus-rtu, port: /dev/ttyUSB0 }\n  - { id: arduino, type: firmata, port: /dev/ttyUSB0 }\n`,
    expect: 'buses.1.port: /dev/ttyUSB0 is already used by bus "rs485-1" (line 4)',
  },
  {
    name: 'gpio pin used twice on one bus',
    yaml: `${GW}${RTU_GPIO}devices:\n  - { id: loop-n1, profile: loop-detector, bus: gpio, pins: { presence: 17 } }\n  - { id: loop-s1, profile: loop-detector, bus: gpio, pins: { presence: 17 } }\n`,
    expect: 'devices.1.pins.presence: pin 17 on bus "gpio" is already used by loop-n1.presence (line 7)',
  },
  {
    name: 'profile pin not mapped',
    yaml: `${GW}${RTU_GPIO}devices:\n  - { id: loop-n1, profile: loop-detector, bus: gpio }\n`,
    expect: 'devices.0.pins: missing presence (profile loop-detector needs pins: presence)',
  },
  {
    name: 'misspelt pin name',
    yaml: `${GW}${RTU_GPIO}devices:\n  - { id: loop-n1, profile: loop-detector, bus: gpio, pins: { presense: 17 } }\n`,
    expect: ['devices.0.pins: missing presence', 'devices.0.pins.presense: unknown pin (did you mean presence?)'],
  },
  {
    name: 'unit on a gpio device',
    yaml: `${GW}${RTU_GPIO}devices:\n  - { id: loop-n1, profile: loop-detector, bus: gpio, unit: 3, pins: { presence: 17 } }\n`,
    expect: 'devices.0.unit: only for Modbus devices; bus "gpio" is gpio',
  },
  {
    name: 'unknown point in the subset',
    yaml: `${GW}${RTU}devices:\n${SOIL(', points: [moisture, moistur]')}`,
    expect: 'devices.0.points.1: unknown point "moistur" in profile comwintop-cwt-soil (did you mean moisture?)',
  },
  {
    name: 'empty point subset',
    yaml: `${GW}${RTU}devices:\n${SOIL(', points: []')}`,
    expect: 'devices.0.points: must not be an empty list',
  },
  {
    name: 'password file missing',
    yaml: `${GW}sync: { url: "mqtts://127.0.0.1:8883", username: u, passwordFile: ./no-such-password }\n`,
    expect: ['sync.passwordFile: cannot read ', 'no-such-password (ENOENT: no such file or directory)'],
  },
  {
    name: 'TLS cert without key',
    yaml: `${GW}sync:\n  url: "mqtts://127.0.0.1:8883"\n  tls: { cert: ./mqtt-password }\n`,
    expect: 'sync.tls.key: required when tls.cert is set',
  },
  {
    name: 'TLS files on a plain mqtt:// URL',
    yaml: `${GW}sync:\n  url: "mqtt://127.0.0.1:1883"\n  tls: { ca: ./mqtt-password }\n`,
    expect: 'sync.tls: set, but sync.url mqtt://127.0.0.1:1883 is not encrypted (use mqtts:// or wss://) (line 4)',
  },
  {
    name: '!file that does not exist',
    yaml: `${GW}sync: { url: "mqtt://127.0.0.1:1883", username: !file ./no-such-user }\n`,
    expect: 'sync.username: cannot read !file ./no-such-user (ENOENT: no such file or directory) (line 2)',
  },
  {
    name: 'profilesDir that is not a directory',
    yaml: 'gateway: { id: gw-1, profilesDir: ./no-such-dir }\n',
    expect: ['gateway.profilesDir: ', 'no-such-dir is not a directory (line 1)'],
  },
];

describe('broken configs', () => {
  it('has a table of at least 25 cases', () => {
    expect(broken.length).toBeGreaterThanOrEqual(25);
  });

  it.each(broken)('$name', ({ name, yaml, expect: wanted }) => {
    // profilesDir goes through the real loader; every other case uses the shipped profiles
    const out = problemsOf(yaml, name.startsWith('profilesDir') ? { profiles: null } : {});
    for (const w of Array.isArray(wanted) ? wanted : [wanted]) expect(out).toContain(w);
  });

  it('prints one `path: message` line per problem, ordered as in the file', () => {
    const out = problemsOf(
      `gateway: { id: gw-1 }\nbuses:\n  - id: b1\n    type: modbus-rtu\n    port: /dev/ttyUSB0\n    baudRate: fast\n    parity: mark\nstorage: { maxAge: forever }\n`,
    );
    expect(out.split('\n')).toEqual([
      'buses.0.baudRate: expected a number, got "fast" (line 6)',
      'buses.0.parity: expected one of none, even, odd, got "mark" (line 7)',
      'storage.maxAge: "forever" is not a duration (use e.g. 500ms, 30s, 5m, 2h, 90d) (line 8)',
    ]);
  });

  it('an unreadable file is one problem addressed by the file', () => {
    const missing = join(tmp, 'config.yaml');
    const result = loadConfigFile(missing);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(formatProblems(result.problems)).toBe(`${missing}: cannot read file (ENOENT: no such file or directory)`);
    const dir = loadConfigFile(tmp);
    expect(dir.ok).toBe(false);
    if (!dir.ok) expect(formatProblems(dir.problems)).toBe(`${tmp}: cannot read file (not a regular file)`);
  });

  it('loadConfigOrThrow throws typed errors with the problems attached', () => {
    expect(() => loadConfigOrThrow(join(tmp, 'nope.yaml'))).toThrow(
      expect.objectContaining({ code: 'CONFIG_UNREADABLE' }),
    );
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(bad, 'gateway: { id: gw-1 }\nlog: { level: loud }\n');
    try {
      loadConfigOrThrow(bad);
      expect.unreachable('should throw');
    } catch (err) {
      expect(err).toMatchObject({ code: 'CONFIG_INVALID' });
      const e = err as Error & { details: { problems: unknown[] } };
      expect(e.message).toBe(
        `${bad}: 1 problem\nlog.level: expected one of trace, debug, info, warn, error, got "loud" (line 2)`,
      );
      expect(e.details.problems).toHaveLength(1);
    }
    expect(
      configError('x.yaml', [
        { path: 'a', message: 'b' },
        { path: 'c', message: 'd', line: 3 },
      ]).message,
    ).toBe('x.yaml: 2 problems\na: b\nc: d (line 3)');
  });
});

describe('valid configs', () => {
  it('parses a full greenhouse config to normalised numbers', () => {
    const result = loadConfigFile(join(FIXTURES, 'greenhouse.yaml'), { checkFiles: false });
    if (!result.ok) throw new Error(formatProblems(result.problems));
    const c = result.config;
    expect(c.gateway).toEqual({
      id: 'dl-gw-0001',
      name: 'Nhà kính 3',
      dataDir: '/var/lib/langbiang',
      timezone: 'Asia/Ho_Chi_Minh',
      location: { lat: 11.9404, lon: 108.4583 },
      assumeClockSynced: false,
    });
    expect(c.buses[0]).toEqual({
      id: 'rs485-soil',
      type: 'modbus-rtu',
      port: '/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0',
      baudRate: 4800,
      parity: 'none',
      stopBits: 1,
      dataBits: 8,
      timeout: 500,
      interFrameDelay: 20,
      retries: 2,
    });
    expect(c.buses[1]).toMatchObject({ baudRate: 9600, timeout: 300 });
    expect(c.devices).toHaveLength(6);
    expect(c.devices[0]).toEqual({
      id: 'soil-a1',
      name: 'Luống A1',
      zone: 'Khu A',
      profile: 'comwintop-cwt-soil',
      bus: 'rs485-soil',
      unit: 1,
      interval: 30_000,
      enabled: true,
    });
    expect(c.devices[3]).toMatchObject({ interval: 60_000, points: ['temperature', 'humidity'] });
    expect(c.devices[5]).toMatchObject({ id: 'soil-spare', enabled: false, interval: 30_000 });
    expect(c.storage).toEqual({
      maxBytes: 4 * 2 ** 30,
      maxAge: 180 * 86_400_000,
      synchronous: 'full',
      batchMaxReadings: 500,
      batchMaxDelay: 1000,
    });
    expect(c.sync).toMatchObject({
      url: 'mqtts://mqtt.dalat.example:8883',
      format: 'native',
      batchMaxReadings: 1000,
      batchMaxDelay: 2000,
      backlogRate: 2000,
    });
    expect(c.sync?.tls?.key).toBe('/etc/langbiang/tls/dl-gw-0001.key');
    expect(c.panel).toEqual({
      port: 8080,
      host: '0.0.0.0',
      irrigation: [],
      publicParking: { enabled: false, carParks: [], ratePerMinute: 30 },
    });
    expect(c.flows).toMatchObject({
      enabled: true,
      maxHeap: 192 * 1024 * 1024,
      heartbeatTimeout: 15_000,
      env: {},
      failsafe: [],
    });
    expect(result.profiles.get('comwintop-cwt-soil')?.kind).toBe('modbus');
    expect(result.warnings).toEqual([]);
  });

  it('parses the streetlight cabinet config (gpio loops, password file)', () => {
    const result = loadConfigFile(join(FIXTURES, 'cabinet.yaml'), { checkFiles: false });
    if (!result.ok) throw new Error(formatProblems(result.problems));
    const c = result.config;
    expect(c.buses.map((b) => b.type)).toEqual(['modbus-rtu', 'gpio']);
    expect(c.devices.find((d) => d.id === 'loop-s1')?.pins).toEqual({ presence: 27 });
    expect(c.storage.maxBytes).toBe(2 ** 30);
    expect(c.storage.maxAge).toBe(90 * 86_400_000);
    expect(c.sync?.passwordFile).toBe('/etc/langbiang/mqtt-password');
    // the same file with files checked: the password file is not on this machine
    const checked = loadConfigFile(join(FIXTURES, 'cabinet.yaml'));
    expect(checked.ok).toBe(false);
    if (!checked.ok)
      expect(formatProblems(checked.problems)).toContain(
        'sync.passwordFile: cannot read /etc/langbiang/mqtt-password (ENOENT',
      );
  });

  it('applies every default to a minimal config', () => {
    const c = parseOk('gateway: { id: gw-1 }\n');
    expect(c).toEqual({
      gateway: {
        id: 'gw-1',
        dataDir: '/var/lib/langbiang',
        timezone: 'Asia/Ho_Chi_Minh',
        location: { lat: 11.9404, lon: 108.4583 },
        assumeClockSynced: false,
      },
      buses: [],
      devices: [],
      storage: {
        maxBytes: 2 * 2 ** 30,
        maxAge: 90 * 86_400_000,
        synchronous: 'full',
        batchMaxReadings: 500,
        batchMaxDelay: 1000,
      },
      panel: {
        port: 8080,
        host: '0.0.0.0',
        irrigation: [],
        publicParking: { enabled: false, carParks: [], ratePerMinute: 30 },
      },
      flows: {
        enabled: false,
        maxHeap: 192 * 1024 * 1024,
        maxRss: 384 * 1024 * 1024,
        heartbeatTimeout: 15_000,
        startTimeout: 120_000,
        restartDelay: 1000,
        restartDelayMax: 300_000,
        crashLoop: { crashes: 5, window: 600_000, cooldown: 1_800_000 },
        env: {},
        allowUnsafeNodes: false,
        failsafe: [],
      },
      log: { level: 'info' },
      update: { confirmWindow: 300_000 },
      cabinets: [],
      parkingSigns: [],
      alarms: [],
    });
  });

  it('fills bus defaults per type and takes plain numbers as ms', () => {
    const c = parseOk(
      `${GW}buses:\n  - { id: a, type: modbus-rtu, port: /dev/ttyUSB0, timeout: 250 }\n  - { id: b, type: modbus-tcp, host: 127.0.0.1 }\n`,
    );
    expect(c.buses[0]).toEqual({
      id: 'a',
      type: 'modbus-rtu',
      port: '/dev/ttyUSB0',
      baudRate: 9600,
      parity: 'none',
      stopBits: 1,
      dataBits: 8,
      timeout: 250,
      retries: 2,
    });
    expect(c.buses[1]).toEqual({
      id: 'b',
      type: 'modbus-tcp',
      host: '127.0.0.1',
      port: 502,
      timeout: 1000,
      retries: 2,
    });
  });

  it('resolves relative paths against the base directory', () => {
    const c = parseOk(
      `gateway: { id: gw-1, dataDir: .data/x }\nsync: { url: "mqtt://127.0.0.1:1883", username: u, passwordFile: mqtt-password }\n`,
    );
    expect(c.gateway.dataDir).toBe(join(tmp, '.data/x'));
    expect(c.sync?.passwordFile).toBe(join(tmp, 'mqtt-password'));
  });

  it('takes the standard formats with their sections; RPC and DCMD writes are off by default', () => {
    writeFileSync(join(tmp, 'tb-token'), 'A1b2C3\n');
    const tb = parseOk(
      `${GW}sync: { url: "mqtt://127.0.0.1:1883", format: thingsboard, thingsboard: { tokenFile: tb-token } }\n`,
    );
    expect(tb.sync?.format).toBe('thingsboard');
    expect(tb.sync?.thingsboard).toEqual({ tokenFile: join(tmp, 'tb-token'), acceptRpc: false });
    const sp = parseOk(
      `${GW}sync: { url: "mqtt://127.0.0.1:1883", format: sparkplug, sparkplug: { groupId: dalat } }\n`,
    );
    expect(sp.sync?.sparkplug).toEqual({ groupId: 'dalat', acceptCommands: false });
  });

  it('reads !file values, without the trailing newline', () => {
    const c = parseOk(
      `${GW}sync: { url: "mqtt://127.0.0.1:1883", username: !file mqtt-user, passwordFile: mqtt-password }\n`,
    );
    expect(c.sync?.username).toBe('dl-gw-0001');
  });

  it('supports anchors and merge keys', () => {
    // anchors live inside the list: a strict top level has no room for a stash of templates
    const d = parseOk(
      `${GW}${RTU}devices:\n  - &soil { id: s1, profile: comwintop-cwt-soil, bus: rs485-1, unit: 1, interval: 1m }\n  - { <<: *soil, id: s2, unit: 2 }\n`,
    );
    expect(d.devices[1]).toMatchObject({ id: 's2', unit: 2, profile: 'comwintop-cwt-soil', interval: 60_000 });
  });

  it('allows the same unit on different buses and on a disabled device', () => {
    const c = parseOk(
      `${GW}buses:\n  - { id: a, type: modbus-rtu, port: /dev/ttyUSB0 }\n  - { id: b, type: modbus-rtu, port: /dev/ttyUSB1 }\ndevices:\n  - { id: d1, profile: xy-md02, bus: a, unit: 1 }\n  - { id: d2, profile: xy-md02, bus: b, unit: 1 }\n  - { id: d3, profile: xy-md02, bus: a, unit: 1, enabled: false }\n`,
    );
    expect(c.devices.map((d) => d.unit)).toEqual([1, 1, 1]);
  });

  it('warns (does not fail) when a bus runs at another speed than the profile ships with', () => {
    const result = parseConfigText(`${GW}${RTU}devices:\n${SOIL()}`, { profiles, baseDir: tmp });
    if (!result.ok) throw new Error(formatProblems(result.problems));
    expect(formatProblems(result.warnings)).toContain(
      'devices.0.bus: profile comwintop-cwt-soil ships at 4800 baud, bus "rs485-1" runs at 9600',
    );
  });
});

describe('profiles from gateway.profilesDir', () => {
  const SITE_PROFILE = [
    'manufacturer: Đà Lạt Agritech',
    'model: Leaf wetness LW-1',
    'source: { title: LW-1 register map (site document) }',
    'points:',
    '  - { name: wetness, function: input, address: 0, type: u16, unit: "%" }',
  ].join('\n');

  it('loads site profiles through the profile loader, beside the built-in ones', () => {
    const dir = join(tmp, 'site-profiles');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'leaf-wetness.yaml'), SITE_PROFILE);
    const text = `gateway: { id: gw-1, profilesDir: site-profiles }\n${RTU}devices:\n  - { id: leaf-1, profile: leaf-wetness, bus: rs485-1, unit: 7, points: [wetness] }\n  - { id: air-1, profile: xy-md02, bus: rs485-1, unit: 8 }\n`;
    const result = parseConfigText(text, { baseDir: tmp });
    if (!result.ok) throw new Error(formatProblems(result.problems));
    expect(result.config.gateway.profilesDir).toBe(dir);
    expect(result.profiles.get('leaf-wetness')?.points.map((p) => p.name)).toEqual(['wetness']);
    expect(result.profiles.has('xy-md02')).toBe(true);
  });

  it('reports a broken site profile on gateway.profilesDir, in one line', () => {
    const dir = join(tmp, 'broken-profiles');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'bad.yaml'), 'manufacturer: x\n');
    const out = problemsOf('gateway: { id: gw-1, profilesDir: broken-profiles }\n', { profiles: null });
    expect(out).toMatch(/^gateway\.profilesDir: cannot load profiles: .*bad.* \(line 1\)$/);
  });
});

describe('docs/config.md', () => {
  it.each([
    ['a greenhouse', 'greenhouse.yaml'],
    ['a streetlight cabinet', 'cabinet.yaml'],
  ])('shows the %s example exactly as the tested fixture', (title, fixture) => {
    const doc = readFileSync(join(packageRoot(), 'docs', 'config.md'), 'utf8');
    const section = doc.split(`## Example: ${title}`)[1] ?? '';
    const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block).toBeDefined();
    expect(parseYaml(block ?? '')).toEqual(parseYaml(readFileSync(join(FIXTURES, fixture), 'utf8')));
  });
});

describe('demo config', () => {
  it('is found from the package root and validates with the shipped profiles', () => {
    const file = demoConfigPath();
    expect(file).toBe(join(packageRoot(), 'gateway', 'config', 'demo.yaml'));
    const result = loadConfigFile(file, { baseDir: tmp });
    if (!result.ok) throw new Error(formatProblems(result.problems));
    const c = result.config;
    expect(c.gateway.id).toBe('dl-demo-0001');
    expect(c.gateway.name).toBe('Nhà kính demo');
    expect(c.gateway.dataDir).toBe(join(tmp, '.data/demo'));
    expect(c.buses[0]).toEqual({
      id: 'demo-tcp',
      type: 'modbus-tcp',
      host: '127.0.0.1',
      port: 15502,
      timeout: 1000,
      retries: 2,
    });
    // the loop detectors run on a simulated gpio bus: the demo never touches /sys/class/gpio
    expect(c.buses.find((b) => b.type === 'gpio')).toMatchObject({ id: 'road', backend: 'simulated' });
    expect(
      c.devices.filter((d) => d.profile === 'loop-detector').map((d) => [d.id, d.pins, d.options?.loopDistance]),
    ).toEqual([
      ['loop-l1', { presence: 17, presence_b: 27 }, 4.5],
      ['loop-l2', { presence: 22, presence_b: 23 }, 4.5],
    ]);
    expect(
      c.devices
        .filter((d) => d.bus === 'demo-tcp')
        .slice(0, 5)
        .map((d) => [d.id, d.profile, d.unit]),
    ).toEqual([
      ['soil-a1', 'comwintop-cwt-soil', 1],
      ['soil-a2', 'comwintop-cwt-soil', 2],
      ['climate-1', 'xy-md02', 3],
      ['meter-1', 'eastron-sdm120', 4],
      ['valves', expect.stringContaining('relay'), 5],
    ]);
    expect(c.devices.map((d) => d.zone).slice(0, 2)).toEqual(['Khu A', 'Khu B']);
    for (const d of c.devices) {
      expect(d.interval).toBeGreaterThanOrEqual(5000);
      expect(d.interval).toBeLessThanOrEqual(10_000);
    }
  });
});

describe('parseDuration / parseSize', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['90d', 7_776_000_000],
    ['1w', 604_800_000],
    ['1h30m', 5_400_000],
    ['1h 30m', 5_400_000],
    ['1.5s', 1500],
    ['1.1s', 1100],
    [' 30 s ', 30_000],
    ['250', 250],
    [250, 250],
    [0, 0],
  ] as const)('duration %j = %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each(['5 minutes', '', 'ms', '1x', '-1s', '1h 30', '1e3s', 'h1', '30S', -5, Number.NaN, Number.POSITIVE_INFINITY])(
    'duration %j is refused',
    (input) => {
      expect(() => parseDuration(input)).toThrow(
        expect.objectContaining({
          code: 'CONFIG_INVALID',
          message: expect.stringContaining('is not a duration (use e.g. 500ms, 30s'),
        }),
      );
    },
  );

  it.each([
    ['512KiB', 524_288],
    ['2GiB', 2_147_483_648],
    ['100MB', 100_000_000],
    ['10kb', 10_000],
    ['1.5KiB', 1536],
    ['1 MiB', 1_048_576],
    ['4096', 4096],
    ['64B', 64],
    [1024, 1024],
  ] as const)('size %j = %d bytes', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  it.each(['2 gigs', '', 'GiB', '-1MiB', '1XB', '1.2.3MB', -1, Number.NaN])('size %j is refused', (input) => {
    expect(() => parseSize(input)).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('is not a size (use e.g. 512MiB, 2GiB)'),
      }),
    );
  });

  it('formats back to the shortest exact form', () => {
    expect([90 * 86_400_000, 1500, 30_000, 7_200_000, 0].map(formatDuration)).toEqual([
      '90d',
      '1500ms',
      '30s',
      '2h',
      '0ms',
    ]);
    expect([2 ** 31, 1536, 1_000_000].map(formatSize)).toEqual(['2GiB', '1536B', '1000000B']);
    for (const s of ['90d', '30s', '5m', '500ms']) expect(formatDuration(parseDuration(s))).toBe(s);
  });

  it('suggests close names only', () => {
    expect(closest('baudrate', ['baudRate', 'parity', 'port'])).toBe('baudRate');
    expect(closest('timeuot', ['timeout', 'interFrameDelay'])).toBe('timeout');
    expect(closest('colour', ['port', 'host'])).toBeUndefined();
  });
});

// A small JSON Schema checker for the keywords the generated schema uses: enough to show the
// shipped schema agrees with the validator on real configs, without another dependency.
type Json = Record<string, unknown>;
function schemaErrors(schema: Json, value: unknown, path = '$'): string[] {
  const errs: string[] = [];
  const typeOf = (v: unknown) =>
    v === null
      ? 'null'
      : Array.isArray(v)
        ? 'array'
        : typeof v === 'number'
          ? Number.isInteger(v)
            ? 'integer'
            : 'number'
          : typeof v;
  if (schema.type !== undefined) {
    const types = ([] as string[]).concat(schema.type as string | string[]);
    const t = typeOf(value);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number')))
      errs.push(`${path}: type ${t} not in ${types.join('|')}`);
  }
  if (schema.const !== undefined && value !== schema.const) errs.push(`${path}: not ${String(schema.const)}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) errs.push(`${path}: not in enum`);
  if (typeof value === 'string' && typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value))
    errs.push(`${path}: pattern`);
  if (typeof value === 'number' && typeof schema.minimum === 'number' && value < schema.minimum)
    errs.push(`${path}: minimum`);
  if (typeof value === 'number' && typeof schema.maximum === 'number' && value > schema.maximum)
    errs.push(`${path}: maximum`);
  if (Array.isArray(schema.oneOf)) {
    const ok = (schema.oneOf as Json[]).filter((s) => schemaErrors(s, value, path).length === 0).length;
    if (ok !== 1) errs.push(`${path}: matches ${ok} of oneOf`);
  }
  if (Array.isArray(schema.anyOf) && !(schema.anyOf as Json[]).some((s) => schemaErrors(s, value, path).length === 0))
    errs.push(`${path}: anyOf`);
  if (typeOf(value) === 'object') {
    const obj = value as Json;
    const props = (schema.properties ?? {}) as Record<string, Json>;
    for (const r of (schema.required ?? []) as string[]) if (!(r in obj)) errs.push(`${path}.${r}: required`);
    for (const [k, v] of Object.entries(obj)) {
      if (props[k]) errs.push(...schemaErrors(props[k], v, `${path}.${k}`));
      else if (schema.additionalProperties === false) errs.push(`${path}.${k}: additional property`);
      else if (typeof schema.additionalProperties === 'object')
        errs.push(...schemaErrors(schema.additionalProperties as Json, v, `${path}.${k}`));
    }
  }
  if (Array.isArray(value) && schema.items) {
    value.forEach((v, i) => {
      errs.push(...schemaErrors(schema.items as Json, v, `${path}[${i}]`));
    });
  }
  return errs;
}

describe('JSON Schema', () => {
  const schema = configJsonSchema();

  it('is a titled draft-07 schema with descriptions and the four bus types', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.title).toBe('Langbiang Edge gateway config');
    const props = schema.properties as Record<string, Json>;
    expect(Object.keys(props)).toEqual([
      'gateway',
      'buses',
      'devices',
      'storage',
      'sync',
      'panel',
      'flows',
      'log',
      'update',
      'cabinets',
      'parkingSigns',
      'alarms',
    ]);
    expect(schema.required).toEqual(['gateway']);
    expect(schema.additionalProperties).toBe(false);
    const busItems = (props.buses as Json).items as Json;
    const busTypes = (busItems.oneOf as Json[]).map((b) => ((b.properties as Record<string, Json>).type as Json).const);
    expect(busTypes).toEqual(['modbus-rtu', 'modbus-tcp', 'gpio', 'firmata']);
    const gateway = props.gateway as Json;
    expect(((gateway.properties as Record<string, Json>).id as Json).description).toMatch(/unique in the city/);
    const storage = (props.storage as Json).properties as Record<string, Json>;
    expect(storage.maxBytes).toMatchObject({ default: '2GiB', type: ['string', 'number'] });
  });

  it('accepts the demo and the fixture configs as written', () => {
    for (const file of [demoConfigPath(), join(FIXTURES, 'greenhouse.yaml'), join(FIXTURES, 'cabinet.yaml')]) {
      expect({ file, errors: schemaErrors(schema, parseYaml(readFileSync(file, 'utf8'))) }).toEqual({
        file,
        errors: [],
      });
    }
  });

  it('refuses what the validator refuses', () => {
    const doc = (text: string) => schemaErrors(schema, parseYaml(text));
    expect(
      doc('gateway: { id: gw-1 }\nbuses: [{ id: b, type: modbus-rtu, port: /dev/x, baudrate: 9600 }]\n'),
    ).toContain('$.buses[0]: matches 0 of oneOf');
    expect(doc('gateway: { id: GW }\n')).toEqual(['$.gateway.id: pattern']);
    expect(doc('gateway: { id: gw }\nstorage: { maxBytes: 2 gigs }\n')).toEqual(['$.storage.maxBytes: pattern']);
    expect(doc('gateway: { id: gw }\nstorage: { maxAge: 5 minutes }\n')).toEqual(['$.storage.maxAge: pattern']);
    expect(doc('gateway: { id: gw }\nlog: { level: loud }\n')).toEqual(['$.log.level: not in enum']);
    expect(doc('buses: []\n')).toEqual(['$.gateway: required']);
  });

  it('matches the shipped schema file (regenerate with npm run build)', () => {
    const shipped = JSON.parse(readFileSync(join(packageRoot(), 'schema', 'langbiang-config.schema.json'), 'utf8'));
    expect(shipped).toEqual(JSON.parse(JSON.stringify(schema)));
  });
});
