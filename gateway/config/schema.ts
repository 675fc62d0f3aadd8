import { z } from 'zod';
import { flowEnvNameProblem } from '../../flows/host/flow-env.js';
import { describeError } from '../core/errors.js';
import { cabinetSchema } from './cabinet-schema.js';
import { describeValue } from './problems.js';
import { DURATION_PATTERN, formatDuration, formatSize, parseDuration, parseSize, SIZE_PATTERN } from './units.js';

/**
 * The one source of the config's shape: validation, defaults, the TypeScript types and the
 * shipped JSON Schema all come from here. Durations and sizes are written by humans (`30s`,
 * `2GiB`) and come out as ms and bytes. Every object is strict, so a typo is an error, not a
 * silently ignored key.
 */

/** `1M`, `30S`: the units are lower case, and `m` is minutes (there is no month). */
function lowerCaseHint(input: unknown): string {
  if (typeof input !== 'string' || input === input.toLowerCase()) return '';
  return `; units are lower case: ms, s, m (minutes), h, d, w — did you mean "${input.toLowerCase()}"?`;
}

function duration(description: string, min = 0) {
  return z
    .union([z.string(), z.number()], {
      error: (iss) => `expected a duration like 30s or 500ms, got ${describeValue(iss.input)}`,
    })
    .transform((input, ctx) => {
      try {
        const ms = parseDuration(input);
        if (ms < min) {
          ctx.issues.push({
            code: 'custom',
            input,
            message: `must be at least ${formatDuration(min)}, got ${formatDuration(ms)}`,
          });
          return z.NEVER;
        }
        return ms;
      } catch (err) {
        ctx.issues.push({ code: 'custom', input, message: `${describeError(err)}${lowerCaseHint(input)}` });
        return z.NEVER;
      }
    })
    .meta({ description, pattern: DURATION_PATTERN, minimum: min, examples: ['500ms', '30s', '5m', '2h', '90d'] });
}

function size(description: string, min = 0) {
  return z
    .union([z.string(), z.number()], {
      error: (iss) => `expected a size like 512MiB or 2GiB, got ${describeValue(iss.input)}`,
    })
    .transform((input, ctx) => {
      try {
        const bytes = parseSize(input);
        if (bytes < min) {
          ctx.issues.push({
            code: 'custom',
            input,
            message: `must be at least ${formatSize(min)}, got ${formatSize(bytes)}`,
          });
          return z.NEVER;
        }
        return bytes;
      } catch (err) {
        ctx.issues.push({ code: 'custom', input, message: describeError(err) });
        return z.NEVER;
      }
    })
    .meta({ description, pattern: SIZE_PATTERN, minimum: min, examples: ['512KiB', '100MB', '2GiB'] });
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function isBrokerUrl(url: string): boolean {
  try {
    return ['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(new URL(url).protocol);
  } catch {
    return false;
  }
}

const GATEWAY_ID = /^[a-z0-9][a-z0-9\-_]{0,63}$/;
// Bus and device ids end up in MQTT topics, URLs and CSV columns: no spaces, slashes or wildcards.
const LOCAL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function localId(what: string) {
  return z
    .string()
    .regex(LOCAL_ID, {
      error: (iss) =>
        `${describeValue(iss.input)} is not a valid ${what} id (letters, digits, '.', '-', '_'; up to 64; no spaces)`,
    })
    .meta({
      description: `Unique ${what} id; used in logs, MQTT topics and exports.`,
      examples: [what === 'bus' ? 'rs485-1' : 'soil-a1'],
    });
}

function filePath(description: string) {
  return z.string().min(1).meta({ description });
}

export const BAUD_RATES = [1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200] as const;

export const DEFAULT_LOCATION = { lat: 11.9404, lon: 108.4583 } as const;

const locationSchema = z
  .strictObject({
    lat: z.number().min(-90).max(90).meta({ description: 'Latitude in degrees (WGS 84).' }),
    lon: z.number().min(-180).max(180).meta({ description: 'Longitude in degrees (WGS 84).' }),
  })
  .meta({ description: 'Where the gateway is; used for sunrise/sunset schedules and the city map. Default: Đà Lạt.' });

const gatewaySection = z
  .strictObject({
    id: z
      .string()
      .regex(GATEWAY_ID, {
        error: (iss) =>
          `${describeValue(iss.input)} is not a valid gateway id (lowercase letters, digits, '-' and '_', up to 64, starting with a letter or digit)`,
      })
      .meta({
        description: 'Gateway id, unique in the city; the MQTT topic root is langbiang/v1/{id}/.',
        examples: ['dl-gw-0001'],
      }),
    name: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Human name shown on the panel.', examples: ['Nhà kính 3'] }),
    dataDir: z.string().min(1).default('/var/lib/langbiang').meta({
      description: 'Where the SQLite store lives. Relative paths are resolved against the working directory.',
    }),
    timezone: z
      .string()
      .refine(isTimeZone, {
        error: (iss) => `${describeValue(iss.input)} is not an IANA time zone (e.g. Asia/Ho_Chi_Minh, UTC)`,
      })
      .default('Asia/Ho_Chi_Minh')
      .meta({ description: 'IANA time zone for schedules and the panel.', examples: ['Asia/Ho_Chi_Minh'] }),
    location: locationSchema.default({ ...DEFAULT_LOCATION }),
    profilesDir: filePath(
      'Extra directory of device profiles (*.yaml); a profile here overrides a built-in one of the same name.',
    ).optional(),
    assumeClockSynced: z.boolean().default(false).meta({
      description:
        'Treat the wall clock as synchronised from the start (boards with an RTC). Default false: readings are corrected once NTP syncs.',
    }),
  })
  .meta({ description: 'Who this gateway is.' });

// Noisy lines (issue 15): how often a request with no usable answer is sent again.
const modbusRetries = z.number().int().min(0).max(5).default(2).meta({
  description:
    'Extra tries of a request that got no usable answer (timeout, garbled frame); reads and state-setting writes only, never a trigger point. 2 keeps a 5 % loss of replies to well under 1 % of polls. A unit that failed its last two polls gets none.',
});

const modbusRtuBus = z
  .strictObject({
    id: localId('bus'),
    type: z.literal('modbus-rtu'),
    port: z
      .string()
      .min(1)
      .meta({
        description: 'Serial device; prefer /dev/serial/by-id/… so the name survives replugging.',
        examples: ['/dev/ttyUSB0'],
      }),
    baudRate: z
      .literal(BAUD_RATES)
      .default(9600)
      .meta({ description: 'Line speed; every device on the bus must use the same.' }),
    parity: z.enum(['none', 'even', 'odd']).default('none'),
    stopBits: z.literal([1, 2]).default(1),
    dataBits: z.literal([7, 8]).default(8),
    timeout: duration('How long to wait for each answer.', 10).prefault('500ms'),
    interFrameDelay: duration('Pause between a reply and the next request (slow devices need 20–50ms).').optional(),
    retries: modbusRetries,
  })
  .meta({ title: 'Modbus RTU bus', description: 'An RS-485 line driven through a serial port.' });

const modbusTcpBus = z
  .strictObject({
    id: localId('bus'),
    type: z.literal('modbus-tcp'),
    host: z.string().min(1).meta({ description: 'Host name or IP address of the Modbus TCP server or RTU gateway.' }),
    port: z.number().int().min(1).max(65535).default(502),
    timeout: duration('How long to wait for each answer.', 10).prefault('1s'),
    retries: modbusRetries,
  })
  .meta({ title: 'Modbus TCP bus', description: 'A Modbus TCP server (or a TCP-to-RS-485 gateway).' });

const gpioBus = z
  .strictObject({
    id: localId('bus'),
    type: z.literal('gpio'),
    chip: z
      .union([z.string().min(1), z.number().int().min(0)], {
        error: (iss) => `expected a chip name like gpiochip0 or a number, got ${describeValue(iss.input)}`,
      })
      .optional()
      .meta({
        description:
          "GPIO chip: its label (pinctrl-rp1), sysfs name (gpiochip571) or base number; default: the board's header chip, found by label.",
      }),
    backend: z.enum(['sysfs', 'simulated']).default('sysfs').meta({
      description:
        "sysfs: the board's pins (through onoff); simulated: vehicles on simulated loops, for the demo and tests (never touches the hardware).",
    }),
    simulate: z
      .strictObject({
        vehiclesPerMinute: z.number().positive().max(6000).default(12).meta({ description: 'Mean traffic per lane.' }),
        speed: z.number().positive().max(250).default(35).meta({ description: 'Mean vehicle speed, km/h.' }),
        speedSpread: z
          .number()
          .min(0)
          .max(100)
          .default(8)
          .meta({ description: 'Speeds spread over speed ± this, km/h.' }),
        bounce: duration('Contact bounce after each edge (0 = clean contacts).').prefault('0ms'),
        seed: z.number().int().optional().meta({ description: 'Random seed (reproducible traffic).' }),
      })
      .optional()
      .meta({ description: 'Traffic of a simulated gpio bus (backend: simulated only).' }),
  })
  .meta({ title: 'GPIO bus', description: "The board's own GPIO pins." });

const firmataBus = z
  .strictObject({
    id: localId('bus'),
    type: z.literal('firmata'),
    port: z
      .string()
      .min(1)
      .meta({ description: 'Serial device of the Firmata board.', examples: ['/dev/ttyACM0'] }),
    baudRate: z.literal(BAUD_RATES).default(57600).meta({ description: 'StandardFirmata runs at 57600.' }),
    samplingInterval: duration('How often the board reports its analog inputs.', 10).prefault('250ms'),
  })
  .meta({ title: 'Firmata bus', description: 'An Arduino-class board running StandardFirmata.' });

export const busSchema = z.discriminatedUnion('type', [modbusRtuBus, modbusTcpBus, gpioBus, firmataBus]);

const unitError = (iss: { input?: unknown }) => `must be a Modbus unit id 1–247, got ${describeValue(iss.input)}`;

const deviceSchema = z
  .strictObject({
    id: localId('device'),
    name: z.string().min(1).optional().meta({ description: 'Human name shown on the panel.' }),
    zone: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Label the farmer panel groups cards by.', examples: ['Khu A'] }),
    profile: z
      .string()
      .min(1)
      .meta({
        description: 'Device profile name (built-in, or a file in gateway.profilesDir).',
        examples: ['comwintop-cwt-soil'],
      }),
    bus: z.string().min(1).meta({ description: 'Id of the bus the device is on.' }),
    unit: z
      .number()
      .int()
      .min(1, { error: unitError })
      .max(247, { error: unitError })
      .optional()
      .meta({ description: 'Modbus unit (slave) id 1–247; required on Modbus buses.' }),
    pins: z
      .record(z.string().min(1), z.number().int().min(0).max(1023))
      .optional()
      .meta({ description: "GPIO/Firmata pin numbers by the profile's pin names.", examples: [{ presence: 17 }] }),
    options: z
      .record(z.string().min(1), z.union([z.number(), z.boolean(), z.string()]))
      .optional()
      .meta({
        description: "Device settings the profile declares (its `options`), e.g. a loop pair's loopDistance in metres.",
        examples: [{ loopDistance: 4.5, laneId: 1 }],
      }),
    interval: duration('How often to poll.', 100).prefault('30s'),
    groupIntervals: z
      .record(z.string().min(1), duration('How often to poll the points of this poll group.', 100))
      .optional()
      .meta({
        description: "Poll intervals for the profile's poll groups (a point's `group`); other points use `interval`.",
        examples: [{ info: '1h', levels: '5m' }],
      }),
    points: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .meta({ description: 'Poll only these profile points (default: all).' }),
    enabled: z
      .boolean()
      .default(true)
      .meta({ description: 'false keeps the device in the config but does not poll it.' }),
  })
  .meta({ description: 'A physical device on a bus.' });

const storageSchema = z
  .strictObject({
    maxBytes: size(
      'Cap on the database size; the oldest readings are dropped first (and a gap event recorded).',
      2 ** 20,
    ).prefault('2GiB'),
    maxAge: duration('Readings older than this are dropped.', 60_000).prefault('90d'),
    synchronous: z.enum(['full', 'normal']).default('full').meta({
      description:
        'full: a committed batch survives power loss; normal: the last batches may be lost on power loss, fewer writes.',
    }),
    batchMaxReadings: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(500)
      .meta({ description: 'Commit after this many readings…' }),
    batchMaxDelay: duration('…or after this long, whichever comes first.').prefault('1s'),
  })
  .meta({ description: 'The local SQLite store.' });

const syncSchema = z
  .strictObject({
    url: z
      .string()
      .refine(isBrokerUrl, {
        error: (iss) => `${describeValue(iss.input)} is not a broker URL (use mqtt://, mqtts://, ws:// or wss://)`,
      })
      .meta({ description: 'MQTT broker URL.', examples: ['mqtts://mqtt.dalat.example:8883'] }),
    clientId: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .meta({ description: 'MQTT client id (default: langbiang-{gateway.id}).' }),
    tls: z
      .strictObject({
        ca: filePath('CA certificate file (PEM).').optional(),
        cert: filePath('Client certificate file (PEM).').optional(),
        key: filePath('Client private key file (PEM).').optional(),
      })
      .optional()
      .meta({ description: 'TLS files for mqtts:// and wss://. Paths, checked to be readable at validate time.' }),
    username: z.string().min(1).optional(),
    passwordFile: filePath('File holding the MQTT password (the password never goes in the config).').optional(),
    // ---- northbound formats (docs/northbound.md) ----
    format: z
      .enum(['native', 'sparkplug', 'thingsboard', 'ngsi-ld'])
      .default('native')
      // NGSI-LD is spoken by the city's receiver toward a context broker, not by the gateway
      .refine((f) => f !== 'ngsi-ld', {
        error: () =>
          '"ngsi-ld" is not a gateway format: the receiver feeds an NGSI-LD context broker (langbiang receiver --ngsi-ld); use native, thingsboard or sparkplug',
      })
      .meta({
        description:
          'Northbound payload format: native (Langbiang receiver, end-to-end acks), thingsboard (ThingsBoard gateway MQTT API) or sparkplug (Sparkplug B 3.0). See docs/northbound.md.',
        // the shipped JSON Schema offers only what validate accepts, so an editor never suggests a refused value
        enum: ['native', 'thingsboard', 'sparkplug'],
      }),
    thingsboard: z
      .strictObject({
        tokenFile: filePath(
          "File holding the ThingsBoard gateway device's access token (sent as the MQTT user name; never put in the config).",
        ),
        acceptRpc: z.boolean().default(false).meta({
          description:
            'Run server-side RPC (method "write") through the command router. Off by default: ThingsBoard RPC cannot carry the city\'s signatures.',
        }),
      })
      .optional()
      .meta({ description: 'ThingsBoard gateway MQTT API settings (sync.format: thingsboard).' }),
    sparkplug: z
      .strictObject({
        groupId: z
          .string()
          .min(1)
          .regex(/^[^/+#]+$/, { error: 'must not contain /, + or #' })
          .meta({
            description: 'Sparkplug group id; the edge node id is gateway.id.',
            examples: ['dalat-greenhouses'],
          }),
        acceptCommands: z.boolean().default(false).meta({
          description:
            'Run DCMD writes through the command router. Off by default: a Sparkplug host cannot sign its commands.',
        }),
      })
      .optional()
      .meta({ description: 'Sparkplug B settings (sync.format: sparkplug).' }),
    // ---- end of northbound formats ----
    batchMaxReadings: z.number().int().min(1).max(100_000).default(5000).meta({
      description: 'Most readings in one MQTT message; a live batch goes as soon as it has this many.',
    }),
    // 30 s: each message pays its framing, header and name table once; at the 1–2 readings/s of a
    // greenhouse that keeps the wire near 5 bytes per reading (docs/performance.md, "Wire").
    batchMaxDelay: duration(
      'Longest a live reading waits to fill a batch: the latency of live data at the city.',
    ).prefault('30s'),
    batchMaxBytes: size('Largest encoded MQTT message; bigger batches are split.', 1024).prefault('64KiB'),
    backlogRate: z
      .number()
      .positive()
      .default(5000)
      .meta({ description: 'Backlog drain pace in readings per second (live readings are not paced).' }),
    // The city's receiver acknowledges end to end what it stored (docs/protocol.md, "End-to-end
    // acknowledgement"); a PUBACK only says the broker has a message.
    confirm: z.boolean().default(true).meta({
      description:
        "Keep every reading until the city's receiver confirms it stored it (the `ack` topic), and send again what it has not confirmed. false: the broker's PUBACK counts as confirmation (for a consumer that sends no acks).",
    }),
    confirmTimeout: duration(
      'Confirmation lagging delivery this long: everything unconfirmed is sent again (the receiver drops duplicates).',
      1000,
    ).prefault('2m'),
    // The retained status goes when something in it changes meaningfully (docs/protocol.md,
    // "Status"); otherwise only this often: the last will already tells the city a gateway is gone.
    statusHeartbeat: duration(
      'Longest the retained status goes unrepeated while nothing in it changes (state, confirmation mode, a backlog or confirmation falling behind or catching up, resends, version); while behind it goes every minute.',
      1000,
    ).prefault('15m'),
    confirmStartupWindow: duration(
      'A gateway that has never received an acknowledgement falls back to PUBACK this long after its first delivery, with a warning in the log; the first ack switches it back.',
      1000,
    ).prefault('10m'),
    remoteConfig: z
      .strictObject({
        enabled: z.boolean().default(true).meta({
          description:
            'Accept new configs from the city on langbiang/v1/{id}/config (validated, watched, rolled back on failure).',
        }),
        watch: duration(
          'How long a new config runs on probation (buses open, devices answering, sync working) before it is kept; otherwise the previous config is put back.',
          1000,
        ).prefault('5m'),
      })
      .prefault({})
      .meta({ description: 'Config changes sent by the city over MQTT.' }),
    remoteUpdate: z
      .strictObject({
        enabled: z.boolean().default(true).meta({
          description:
            'Accept signed update orders from the city on langbiang/v1/{id}/update (download, verify, install, restart).',
        }),
        maxBandwidth: size(
          'Average download rate at most, in bytes per second (a cellular plan); unset: no cap.',
          1024,
        ).optional(),
        allowHttp: z.boolean().default(false).meta({
          description:
            'Fetch bundles over plain http:// from other machines too (the order carries the hash, so the bytes are checked either way); https:// is always allowed, http:// to this machine too.',
        }),
      })
      .prefault({})
      .meta({ description: 'Release updates ordered by the city over MQTT.' }),
  })
  .superRefine((sync, ctx) => {
    if (sync.format === 'thingsboard' && sync.passwordFile !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['passwordFile'],
        message:
          'not used with sync.format thingsboard: the access token in thingsboard.tokenFile is the only credential',
      });
    if (sync.format === 'thingsboard' && !sync.thingsboard)
      ctx.addIssue({
        code: 'custom',
        path: ['thingsboard', 'tokenFile'],
        message: 'required when sync.format is thingsboard',
      });
    if (sync.format === 'sparkplug' && !sync.sparkplug)
      ctx.addIssue({
        code: 'custom',
        path: ['sparkplug', 'groupId'],
        message: 'required when sync.format is sparkplug',
      });
  })
  .meta({ description: 'Sync to the city platform over MQTT. Omit to run offline.' });

const panelSchema = z
  .strictObject({
    port: z.number().int().min(1).max(65535).default(8080),
    host: z
      .string()
      .min(1)
      .default('0.0.0.0')
      .meta({ description: 'Address to listen on; 127.0.0.1 keeps the panel local.' }),
    irrigation: z
      .array(
        z.strictObject({
          device: z.string().min(1).meta({ description: 'Device id (a relay board, a valve controller).' }),
          point: z.string().min(1).meta({ description: 'A writable on/off point of that device.' }),
          label: z
            .string()
            .min(1)
            .optional()
            .meta({ description: 'Name on the button.', examples: ['Van khu A'] }),
        }),
      )
      .default([])
      .meta({
        description:
          'Relays the farmer role may switch from the panel (valves, pumps). Technicians may command any writable point.',
      }),
    // issue 15: the public car-park page
    publicParking: z
      .strictObject({
        enabled: z.boolean().default(false).meta({ description: 'Serve /public/parking without login.' }),
        carParks: z
          .array(z.string().min(1))
          .default([])
          .meta({ description: 'Devices (parking-counter) whose free spaces are shown; nothing else is.' }),
        ratePerMinute: z
          .number()
          .int()
          .min(1)
          .max(600)
          .default(30)
          .meta({ description: 'Requests per minute per client address; more get 429.' }),
      })
      .prefault({})
      .meta({
        description:
          'A public page for a roadside sign or a phone: the free spaces of these car parks, no login, rate limited. Off by default.',
      }),
  })
  .meta({ description: 'HTTP server: farmer panel, technician console, API.' });

const flowsSchema = z
  .strictObject({
    enabled: z.boolean().default(false).meta({ description: 'Run Node-RED (in its own process).' }),
    maxHeap: size(
      'V8 heap cap of the Node-RED process (--max-old-space-size); past it the process dies and is restarted.',
      32 * 1024 * 1024,
    ).prefault('192MiB'),
    maxRss: size(
      'The Node-RED process is killed and restarted when its resident memory passes this.',
      64 * 1024 * 1024,
    ).prefault('384MiB'),
    heartbeatTimeout: duration(
      'No heartbeat answer for this long means a flow blocks the event loop: the process is killed and restarted.',
      1000,
    ).prefault('15s'),
    startTimeout: duration('Longest Node-RED may take to start.', 5000).prefault('2m'),
    restartDelay: duration('First restart delay; it doubles with each crash in a row.', 100).prefault('1s'),
    restartDelayMax: duration('Longest restart delay.', 100).prefault('5m'),
    crashLoop: z
      .strictObject({
        crashes: z.number().int().min(2).default(5).meta({ description: 'This many crashes…' }),
        window: duration('…within this long…', 1000).prefault('10m'),
        cooldown: duration('…stop the restarts for this long (a flows event is recorded).', 1000).prefault('30m'),
      })
      .prefault({})
      .meta({ description: 'Crash-loop detection.' }),
    env: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String))
      .superRefine((env, ctx) => {
        for (const name of Object.keys(env)) {
          const problem = flowEnvNameProblem(name);
          if (problem) ctx.addIssue({ code: 'custom', path: [name], message: problem });
        }
      })
      .default({})
      .meta({
        description:
          "Environment variables of the flows: the default flows' parameters (IRRIGATION_*, STREETLIGHT_*; see docs/flows.md) and your own (FLOW_*). No other names: the flows process starts from a minimal environment.",
      }),
    allowUnsafeNodes: z.boolean().default(false).meta({
      description:
        'Load the Node-RED nodes that run programs or touch files (exec, file, file in, watch). Off: a flow cannot become a shell on the gateway.',
    }),
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/, { error: 'must be a local user name' })
      .optional()
      .meta({
        description:
          'Run Node-RED as this local user (the gateway must run as root or hold CAP_SETUID/CAP_SETGID). Its data then stays out of the flows reach: secrets, users file and store are not readable by that user.',
      }),
    failsafe: z
      .array(
        z.strictObject({
          device: z.string().min(1),
          point: z.string().min(1),
          value: z.union([z.number(), z.boolean(), z.string()]),
        }),
      )
      .default([])
      .meta({ description: 'Writes made whenever the Node-RED process goes away (e.g. close the irrigation valve).' }),
  })
  .meta({ description: 'Node-RED flows.' });

const updateSchema = z
  .strictObject({
    confirmWindow: duration(
      'A newly installed release must become healthy (store, buses, the devices that answered before, the city link if it was up) within this long after it starts, or it stops and the previous release is started again.',
      1000,
    ).prefault('5m'),
  })
  .meta({ description: 'Updates of the gateway software (docs/operations.md, "Updating gateways").' });

const logSchema = z
  .strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info') })
  .meta({ description: 'Logging (JSON lines on stdout).' });

// ── alarms (issue 15): local alarm rules, evaluated in the gateway core, acting offline ──
const alarmAction = z
  .strictObject({
    device: z.string().min(1).meta({ description: 'Device with the output (a siren or warning-light relay).' }),
    point: z.string().min(1).meta({ description: 'Writable point of that device.' }),
    value: z.union([z.number(), z.boolean()]).default(1).meta({ description: 'Written when the alarm is raised.' }),
    clearValue: z.union([z.number(), z.boolean()]).default(0).meta({ description: 'Written when the alarm clears.' }),
    onFault: z.boolean().default(false).meta({
      description:
        'Also write `value` when the sensor goes silent or faulty (a warning light that says "look at me"). Default: a fault leaves the output as it is.',
    }),
  })
  .meta({ description: 'An output switched through the command router.' });

const alarmRule = z
  .strictObject({
    id: localId('alarm'),
    name: z.string().min(1).max(120).optional().meta({ description: 'Shown on the panel banner (Vietnamese first).' }),
    device: z.string().min(1).meta({ description: 'Device whose point is watched.' }),
    point: z.string().min(1).meta({ description: 'Numeric point watched.' }),
    above: z.number().optional().meta({ description: 'Raised when the value is above this.' }),
    below: z.number().optional().meta({ description: 'Raised when the value is below this.' }),
    hysteresis: z.number().min(0).default(0).meta({
      description:
        'Clears only once the value is back past the threshold by this much (above: value ≤ above − hysteresis), and a rate-of-rise alarm once the rise is under `rise.by` − hysteresis.',
    }),
    for: duration('The condition must hold this long before the alarm is raised (a wave is not a flood).').prefault(
      '0s',
    ),
    rise: z
      .strictObject({
        by: z.number().positive().meta({ description: 'Raised when the value rose by at least this…' }),
        within: duration('…within this long (e.g. 10 cm in 10m).', 1000),
      })
      .optional()
      .meta({ description: 'Rate-of-rise condition.' }),
    silentAfter: duration(
      'No good reading of the point for this long (silent or faulty sensor) raises a fault alarm; never an all-clear.',
      1000,
    ).prefault('2m'),
    severity: z.enum(['warning', 'critical']).default('critical'),
    actions: z
      .array(alarmAction)
      .default([])
      .meta({ description: 'Outputs switched when the alarm is raised and cleared.' }),
  })
  .superRefine((r, ctx) => {
    if (r.above === undefined && r.below === undefined && r.rise === undefined) {
      ctx.addIssue({ code: 'custom', message: 'needs a condition: above, below or rise', path: [] });
    }
    if (r.above !== undefined && r.below !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'give above or below, not both (make two alarms)', path: ['below'] });
    }
  })
  .meta({
    title: 'Alarm rule',
    description: 'A local alarm: threshold with hysteresis and minimum duration, rate of rise, silent/faulty sensor.',
  });
// ── end of alarms ──

export const gatewayConfigSchema = z.strictObject({
  gateway: gatewaySection,
  buses: z.array(busSchema).default([]).meta({ description: 'Buses the devices are on.' }),
  devices: z.array(deviceSchema).default([]).meta({ description: 'Devices to poll.' }),
  storage: storageSchema.prefault({}),
  sync: syncSchema.optional(),
  panel: panelSchema.prefault({}),
  flows: flowsSchema.prefault({}),
  log: logSchema.prefault({}),
  update: updateSchema.prefault({}),
  cabinets: z
    .array(cabinetSchema)
    .default([])
    .meta({ description: 'Streetlight cabinets: lamps switched and dimmed on a sunset/sunrise schedule.' }),
  parkingSigns: z
    .array(
      z.strictObject({
        carPark: z.string().min(1).meta({ description: 'A parking-counter device.' }),
        device: z.string().min(1).meta({ description: 'The sign, e.g. an rs485-led-display-4digit.' }),
        point: z.string().min(1).default('display_value').meta({ description: "The sign's writable number point." }),
      }),
    )
    .default([])
    .meta({ description: "Free-spaces signs: each car park's free spaces written to its sign as they change." }),
  alarms: z.array(alarmRule).default([]).meta({
    description: 'Local alarm rules: evaluated on the gateway, act through the command router, work offline.',
  }),
});

/** The parsed config: defaults applied, durations in ms, sizes in bytes, paths absolute. */
export type GatewayConfig = z.output<typeof gatewayConfigSchema>;
/** The config as written in YAML (before defaults and units). */
export type GatewayConfigInput = z.input<typeof gatewayConfigSchema>;
export type GatewaySection = GatewayConfig['gateway'];
export type BusConfig = GatewayConfig['buses'][number];
export type BusType = BusConfig['type'];
export type AlarmRuleConfig = GatewayConfig['alarms'][number];
export type ModbusRtuBusConfig = Extract<BusConfig, { type: 'modbus-rtu' }>;
export type ModbusTcpBusConfig = Extract<BusConfig, { type: 'modbus-tcp' }>;
export type GpioBusConfig = Extract<BusConfig, { type: 'gpio' }>;
export type FirmataBusConfig = Extract<BusConfig, { type: 'firmata' }>;
export type DeviceConfig = GatewayConfig['devices'][number];
export type StorageConfig = GatewayConfig['storage'];
export type SyncConfig = NonNullable<GatewayConfig['sync']>;
export type PanelConfig = GatewayConfig['panel'];
export type FlowsConfig = GatewayConfig['flows'];
export type LogConfig = GatewayConfig['log'];
export type UpdateConfig = GatewayConfig['update'];
export type { CabinetConfig, ScheduleConfig } from './cabinet-schema.js';
