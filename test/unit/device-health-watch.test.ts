import { describe, expect, it } from 'vitest';
import type { BusHealth, DeviceHealth, HealthState } from '../../gateway/core/driver.js';
import { EventBus } from '../../gateway/core/events.js';
import { DeviceHealthWatch } from '../../gateway/device-health-watch.js';

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
