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
