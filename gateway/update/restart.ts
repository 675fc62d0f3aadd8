import { UPDATE_RESTART_EXIT_CODE } from './types.js';

/**
 * How code inside the running gateway (the city's MQTT order, the console's upload) asks for the
 * restart that starts a release it has just installed: `langbiang start` registers its clean stop
 * here, and the stop exits with UPDATE_RESTART_EXIT_CODE so the supervisor (systemd Restart=)
 * starts the new `current`. Without a registered handler (tests, tools) it returns false.
 */
let handler: ((reason: string, exitCode: number) => void) | null = null;

export function setUpdateRestartHandler(h: ((reason: string, exitCode: number) => void) | null): void {
  handler = h;
}

export function requestUpdateRestart(reason: string): boolean {
  if (!handler) return false;
  handler(reason, UPDATE_RESTART_EXIT_CODE);
  return true;
}
