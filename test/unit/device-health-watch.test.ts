import { describe, expect, it } from 'vitest';
import type { BusHealth, DeviceHealth, HealthState } from '../../gateway/core/driver.js';
import { EventBus, type GatewayHealthChange } from '../../gateway/core/events.js';
import { DeviceHealthWatch } from '../../gateway/device-health-watch.js';
import { healthProblems } from '../../gateway/health.js';

const device = (id: string, state: HealthState): DeviceHealth => ({
  device: id,
  state,
  consecutiveFailures: state === 'offline' ? 3 : 0,
  polls: 1,
  errors: 0,
});

const bus = (devices: DeviceHealth[], open = true): BusHealth => ({
  bus: 'rs485-1',
  type: 'modbus-rtu',
  open,
  reconnects: 0,
  queueDepth: 0,
  transactions: 0,
  devices,
});

describe('device-health events', () => {
  it('emits once per change of state, not on every check, and a closed bus changes all its devices', () => {
    const events = new EventBus();
    const seen: [string, HealthState][] = [];
    events.on('device-health', (h) => seen.push([h.device, h.state]));
    let report = [bus([device('soil-a1', 'not_polled'), device('soil-a2', 'not_polled')])];
    const watch = new DeviceHealthWatch({ report: () => report, events });

    expect(watch.check()).toBe(2); // first sight of each device
    expect(watch.check()).toBe(0);
    report = [bus([device('soil-a1', 'ok'), device('soil-a2', 'ok')])];
    expect(watch.check()).toBe(2);
    report = [bus([device('soil-a1', 'ok'), device('soil-a2', 'offline')])];
    expect(watch.check()).toBe(1);
    expect(watch.check()).toBe(0);
    report = [bus([device('soil-a1', 'bus_error'), device('soil-a2', 'bus_error')], false)];
    expect(watch.check()).toBe(2);

    expect(seen).toEqual([
      ['soil-a1', 'not_polled'],
      ['soil-a2', 'not_polled'],
      ['soil-a1', 'ok'],
      ['soil-a2', 'ok'],
      ['soil-a2', 'offline'],
      ['soil-a1', 'bus_error'],
      ['soil-a2', 'bus_error'],
    ]);
  });

  it('a report that throws is handed to onError and the watch goes on', () => {
    const events = new EventBus();
    const errors: unknown[] = [];
    let fail = true;
    const watch = new DeviceHealthWatch({
      report: () => {
        if (fail) throw new Error('driver gone');
        return [bus([device('soil-a1', 'ok')])];
      },
      events,
      onError: (err) => errors.push(err),
    });
    expect(watch.check()).toBe(0);
    expect(String(errors[0])).toContain('driver gone');
    fail = false;
    expect(watch.check()).toBe(1);
  });
});

describe('gateway-health events: the one source of the log line and systemd status', () => {
  it('reports the first check, then only changes of the problems, in the words of /healthz', () => {
    const events = new EventBus();
    const seen: GatewayHealthChange[] = [];
    events.on('gateway-health', (h) => seen.push(h));
    let report = [bus([device('soil-a1', 'not_polled'), device('soil-a2', 'not_polled')])];
    const watch = new DeviceHealthWatch({ report: () => report, events });
    expect(watch.current).toBeNull();

    watch.check();
    watch.check();
    expect(seen).toEqual([{ status: 'ok', problems: [] }]);
    expect(watch.current).toEqual({ status: 'ok', problems: [] });

    // a device change that is no problem (not_polled → ok) says nothing here
    report = [bus([device('soil-a1', 'ok'), device('soil-a2', 'ok')])];
    watch.check();
    expect(seen).toHaveLength(1);

    report = [bus([device('soil-a1', 'ok'), { ...device('soil-a2', 'offline'), lastError: 'timeout' }])];
    watch.check();
    watch.check();
    report = [
      { ...bus([device('soil-a1', 'bus_error'), device('soil-a2', 'bus_error')], false), problem: 'unplugged' },
    ];
    watch.check();
    report = [bus([device('soil-a1', 'ok'), device('soil-a2', 'ok')])];
    watch.check();
    expect(seen).toEqual([
      { status: 'ok', problems: [] },
      { status: 'degraded', problems: ['device soil-a2 on bus rs485-1: offline — timeout'] },
      { status: 'degraded', problems: ['bus rs485-1: unplugged (2 devices not polled)'] },
      { status: 'ok', problems: [] },
    ]);
    // the same problems /healthz shows for that report
    expect(watch.current!.problems).toEqual(healthProblems(report));
  });
});
