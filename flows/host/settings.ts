import { timingSafeEqual } from 'node:crypto';
import type { RunnerInit } from './protocol.js';

/** Node-RED's numeric log levels (@node-red/util log.js) → pino's level names. */
const LEVEL_NAMES: Record<number, string> = {
  10: 'fatal',
  20: 'error',
  30: 'warn',
  40: 'info',
  50: 'debug',
  60: 'trace',
};

export interface EditorUser {
  username: string;
  permissions: string;
}

/**
 * Checks the token the gateway's proxy puts in front of every editor request:
 * `<proxyToken> <user name>`. The proxy token is random per child start and known only to the
 * gateway, which sets the header after its own session check and strips it from what browsers send.
 */
export function proxyTokenCheck(proxyToken: string): (token: string) => Promise<EditorUser | null> {
  const expected = Buffer.from(proxyToken);
  return async (token: string) => {
    if (typeof token !== 'string') return null;
    const space = token.indexOf(' ');
    if (space <= 0) return null;
    const given = Buffer.from(token.slice(0, space));
    const user = token.slice(space + 1).trim();
    if (given.length !== expected.length || !timingSafeEqual(given, expected) || !user) return null;
    return { username: user, permissions: '*' };
  };
}

/** One JSON line per Node-RED log message on stdout; the supervisor hands them to the gateway's log. */
export function jsonLineLogger(write: (line: string) => void) {
  return () => (msg: { level: number; msg: unknown; type?: string; id?: string; name?: string }) => {
    const level = LEVEL_NAMES[msg.level];
    if (!level) return; // audit and metric records
    const text =
      msg.msg instanceof Error ? msg.msg.message : typeof msg.msg === 'string' ? msg.msg : JSON.stringify(msg.msg);
    const line: Record<string, unknown> = { level, msg: text };
    if (msg.type) line.nodeType = msg.type;
    if (msg.id) line.node = msg.id;
    if (msg.name) line.nodeName = msg.name;
    write(`${JSON.stringify(line)}\n`);
  };
}

/**
 * Core node files left out unless `flows.allowUnsafeNodes`: they run programs (exec) or read and
 * write the gateway's files (file, file in, watch) — with them a flow is a shell on the box.
 */
export const UNSAFE_NODE_FILES = ['90-exec.js', '10-file.js', '23-watch.js'] as const;

/**
 * The settings Node-RED runs with on a gateway. Everything that could reach outside the box or
 * add a second login is off: no palette installs (no internet on site, and an npm install would
 * stall the child), no telemetry, no HTTP-in endpoints, no projects, no password list — the
 * editor trusts only the gateway's proxy.
 */
export function nodeRedSettings(
  init: RunnerInit,
  bridge: unknown,
  writeLog: (line: string) => void,
): Record<string, unknown> {
  return {
    uiHost: init.host,
    uiPort: init.port,
    userDir: init.userDir,
    flowFile: init.flowFile,
    credentialSecret: init.credentialSecret,
    flowFilePretty: true,
    httpAdminRoot: init.httpAdminRoot,
    httpNodeRoot: false,
    httpStatic: undefined,
    nodesDir: [init.nodesDir],
    nodesExcludes: init.allowUnsafeNodes ? [] : [...UNSAFE_NODE_FILES],
    adminAuth: {
      type: 'credentials',
      users: async () => null,
      authenticate: async () => null,
      tokens: proxyTokenCheck(init.proxyToken),
      tokenHeader: init.tokenHeader,
    },
    logging: {
      langbiang: { level: init.logLevel, metrics: false, audit: false, handler: jsonLineLogger(writeLog) },
    },
    telemetry: { enabled: false },
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    externalModules: {
      autoInstall: false,
      palette: { allowInstall: false, allowUpload: false },
      modules: { allowInstall: false },
    },
    functionExternalModules: false,
    exportGlobalContextKeys: false,
    editorTheme: {
      page: { title: 'Langbiang · Node-RED' },
      header: { title: `Langbiang · ${init.gatewayId}` },
      projects: { enabled: false },
      tours: false,
      multiplayer: { enabled: false },
    },
    /** the gateway bridge for the langbiang nodes (RED.settings.langbiang) */
    langbiang: bridge,
  };
}
