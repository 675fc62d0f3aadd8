/**
 * The parameters of the default flows, as Node-RED environment variables (`${NAME}` in node
 * properties, `env.get('NAME')` in function nodes). These are the defaults; the config's
 * `flows.env` overrides them. docs/flows.md lists them for technicians.
 */
export const DEFAULT_FLOW_ENV: Readonly<Record<string, string>> = {
  IRRIGATION_SENSOR_DEVICE: 'soil-a1',
  IRRIGATION_SENSOR_POINT: 'moisture',
  IRRIGATION_VALVE_DEVICE: 'valves',
  IRRIGATION_VALVE_POINT: 'relay_1',
  IRRIGATION_THRESHOLD: '30',
  IRRIGATION_HYSTERESIS: '5',
  IRRIGATION_DRY_FOR: '10m',
  IRRIGATION_MAX_OPEN: '15m',
  IRRIGATION_MAX_PER_WINDOW: '20m',
  IRRIGATION_WINDOW: '60m',
  IRRIGATION_STALE_AFTER: '5m',
  STREETLIGHT_LUX_DEVICE: 'lux-1',
  STREETLIGHT_LUX_POINT: 'illuminance',
  STREETLIGHT_LAMP_DEVICE: 'lamps',
  STREETLIGHT_LAMP_POINT: 'relay_1',
  STREETLIGHT_LUX_ON: '20',
  STREETLIGHT_LUX_OFF: '50',
  STREETLIGHT_ON_VALUE: 'true',
  STREETLIGHT_OFF_VALUE: 'false',
  STREETLIGHT_SCHEDULE_GRACE: '26h',
};

/**
 * The names `flows.env` may set: the default flows' parameters and the technician's own, each
 * under its prefix. An allow-list, because the child is a Node.js process and a name like
 * NODE_OPTIONS, LD_PRELOAD or PATH would run code in it before any flow does.
 */
export const FLOW_ENV_PREFIXES = ['IRRIGATION_', 'STREETLIGHT_', 'FLOW_'] as const;
const FLOW_ENV_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;

/** Why a `flows.env` name is refused, or undefined when it is allowed. */
export function flowEnvNameProblem(name: string): string | undefined {
  if (!FLOW_ENV_NAME.test(name) || !FLOW_ENV_PREFIXES.some((p) => name.startsWith(p) && name.length > p.length))
    return `"${name.slice(0, 40)}" is not a flows parameter name: upper-case letters, digits and _, starting with ${FLOW_ENV_PREFIXES.join(', ')}`;
  return undefined;
}

/**
 * What the Node-RED child inherits from the gateway's environment: nothing but these. The
 * gateway's own variables (credentials directory, notify socket, NODE_OPTIONS…) stay with it.
 */
const INHERITED = ['TZ', 'LANG', 'LC_ALL'] as const;

/** The child's whole environment: a fixed PATH, the locale and time zone, the flows' parameters. */
export function flowChildEnv(
  flowEnv: Readonly<Record<string, string>>,
  parent: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = { PATH: '/usr/local/bin:/usr/bin:/bin' };
  for (const k of INHERITED) if (parent[k] !== undefined) env[k] = parent[k] as string;
  return { ...env, ...DEFAULT_FLOW_ENV, ...flowEnv, NODE_ENV: 'production' };
}
