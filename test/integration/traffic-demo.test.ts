import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../gateway/app.js';
import { parseConfigText } from '../../gateway/config/index.js';
import { createQuietLogger } from '../../gateway/log.js';

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a gateway with a simulated gpio bus (loop pairs) stores traffic readings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'langbiang-traffic-'));
  let gw: Gateway | null = null;

  afterAll(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores intensity, occupancy and average_speed for each lane, from real-time simulated vehicles', async () => {
    const parsed = parseConfigText(
      `gateway: { id: dl-road-test, dataDir: ${dir}/data, assumeClockSynced: true }
buses:
  - { id: road, type: gpio, backend: simulated, simulate: { vehiclesPerMinute: 240, speed: 40, speedSpread: 5, bounce: 2ms, seed: 3 } }
devices:
  - { id: lane-1, profile: loop-detector, bus: road, pins: { presence: 17, presence_b: 27 }, options: { loopDistance: 4.5, laneId: 1 }, interval: 1s }
  - { id: lane-2, profile: loop-detector, bus: road, pins: { presence: 22 }, options: { laneId: 2 }, interval: 1s }
storage: { batchMaxDelay: 100ms }
`,
      { baseDir: dir },
    );
    if (!parsed.ok) throw new Error(parsed.problems.map((p) => p.message).join('\n'));
    gw = await Gateway.start(parsed.config, { log: createQuietLogger(), http: false });
    const store = gw.store;
    const speeds = await until('average speeds stored for lane-1', () => {
      const rows = store.query({ device: 'lane-1', point: 'average_speed' }).filter((r) => r.value !== null);
      return rows.length >= 2 ? rows : undefined;
    });
    for (const r of speeds) {
      expect(r.unit).toBe('km/h');
      expect(r.quality).toBe('good');
      expect(r.value as number).toBeGreaterThan(30);
      expect(r.value as number).toBeLessThan(50);
    }
    const intensity = store.query({ device: 'lane-1', point: 'intensity' });
    expect(intensity.reduce((s, r) => s + (r.value as number), 0)).toBeGreaterThan(0);
    expect(intensity.every((r) => r.unit === 'veh' && r.quality === 'good')).toBe(true);
    const occupancy = store.query({ device: 'lane-1', point: 'occupancy' });
    expect(occupancy.some((r) => (r.value as number) > 0)).toBe(true);
    expect(occupancy.every((r) => r.value === null || ((r.value as number) >= 0 && (r.value as number) <= 1))).toBe(
      true,
    );
    // a single loop counts but has no speed
    await until('lane-2 readings', () => store.query({ device: 'lane-2', point: 'intensity' }).length >= 2);
    expect(store.query({ device: 'lane-2', point: 'average_speed' }).every((r) => r.value === null)).toBe(true);
    const health = gw.busHealth().find((b) => b.bus === 'road')!;
    expect(health).toMatchObject({ type: 'gpio', open: true });
    expect(health.devices.map((d) => d.state)).toEqual(['ok', 'ok']);
  }, 30_000);
});
