import { loadProfiles } from '../../hardware/profiles.js';
import { type SimBusDevices, startSimulatorsForBuses } from '../../hardware/simulators/index.js';
import { demoConfigPath } from '../config/index.js';
import { LangbiangError } from '../core/errors.js';
import { loadValidConfig } from './config-arg.js';

/**
 * `langbiang simulate`: serve every Modbus device of a config from the built-in simulators, on the
 * bus addresses the config names (TCP host:port, or an RTU serial path such as one end of a socat
 * PTY pair). The demo runs exactly this in a child process.
 */
export async function runSimulate(o: { config?: string }): Promise<void> {
  const file = o.config ?? demoConfigPath();
  const config = loadValidConfig(file);
  const profiles = loadProfiles(config.gateway.profilesDir ? [config.gateway.profilesDir] : []);
  const buses: SimBusDevices[] = [];
  for (const bus of config.buses) {
    if (bus.type !== 'modbus-tcp' && bus.type !== 'modbus-rtu') continue;
    const devices = config.devices.filter((d) => d.bus === bus.id && d.unit !== undefined);
    if (devices.length === 0) continue;
    buses.push({
      id: bus.id,
      bus:
        bus.type === 'modbus-tcp'
          ? { type: 'modbus-tcp', host: bus.host, port: bus.port }
          : { type: 'modbus-rtu', path: bus.port, baudRate: bus.baudRate, parity: bus.parity, stopBits: bus.stopBits },
      units: devices.map((d, i) => ({ unit: d.unit!, profile: profiles.get(d.profile)!, seed: i + 1 })),
    });
  }
  if (buses.length === 0) throw new LangbiangError('USAGE', `${file} has no Modbus devices to simulate`);
  const group = await startSimulatorsForBuses(buses);
  if (config.cabinets.length > 0) {
    const { linkCabinetLoads } = await import('../cabinet/sim-load.js');
    const linked = linkCabinetLoads(config, profiles, (id) => group.get(id));
    if (linked.length) process.stderr.write(`cabinet meters follow their lamps: ${linked.join(', ')}\n`);
  }
  for (const b of buses) {
    const where = b.bus.type === 'modbus-tcp' ? `tcp:${b.bus.host}:${b.bus.port}` : `rtu:${b.bus.path}`;
    process.stderr.write(
      `simulating ${b.units.length} device(s) on ${where} (units ${b.units.map((u) => u.unit).join(', ')})\n`,
    );
  }
  process.stdout.write('simulators ready\n');
  const stop = () => {
    void group.close().finally(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
