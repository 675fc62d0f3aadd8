import type { SyncStatus } from '../../cloud-sync/agent.js';
import { CONFIRMED_CURSOR, SYNC_CURSOR } from '../store/index.js';
import type { Deps } from './types.js';

type Prom = typeof import('prom-client');

/**
 * Prometheus metrics. prom-client is only loaded at the first scrape: a gateway nobody scrapes
 * never pays for it. Values are read from the gateway at scrape time, nothing is kept twice.
 */
export class Metrics {
  private registry: import('prom-client').Registry | null = null;
  private loading: Promise<void> | null = null;

  constructor(private readonly deps: Deps) {}

  async render(): Promise<{ type: string; body: string }> {
    if (!this.registry) {
      this.loading ??= import('prom-client').then((p) => this.build(p));
      await this.loading;
    }
    return { type: this.registry!.contentType, body: await this.registry!.metrics() };
  }

  private build(p: Prom): void {
    const { deps } = this;
    const registry = new p.Registry();
    registry.setDefaultLabels({ gateway: deps.gw.config.gateway.id });
    const gw = deps.gw;

    new p.Counter({
      name: 'langbiang_device_polls_total',
      help: 'Polls of a device since the bus was opened',
      labelNames: ['bus', 'device'],
      registers: [registry],
      collect() {
        this.reset();
        for (const b of gw.busHealth()) for (const d of b.devices) this.inc({ bus: b.bus, device: d.device }, d.polls);
      },
    });
    new p.Counter({
      name: 'langbiang_device_poll_errors_total',
      help: 'Failed polls of a device',
      labelNames: ['bus', 'device'],
      registers: [registry],
      collect() {
        this.reset();
        for (const b of gw.busHealth()) for (const d of b.devices) this.inc({ bus: b.bus, device: d.device }, d.errors);
      },
    });
    new p.Gauge({
      name: 'langbiang_device_up',
      help: '1 when the device is ok, 0.5 degraded, 0 offline or its bus not open (bus_error); absent until first polled',
      labelNames: ['bus', 'device'],
      registers: [registry],
      collect() {
        this.reset();
        for (const b of gw.busHealth())
          for (const d of b.devices) {
            if (d.state === 'not_polled') continue;
            this.set({ bus: b.bus, device: d.device }, d.state === 'ok' ? 1 : d.state === 'degraded' ? 0.5 : 0);
          }
      },
    });
    new p.Gauge({
      name: 'langbiang_health_degraded',
      help: '1 when /healthz says degraded (a bus not open, a device offline), else 0',
      registers: [registry],
      collect() {
        this.set(gw.health().status === 'degraded' ? 1 : 0);
      },
    });
    new p.Gauge({
      name: 'langbiang_health_problems',
      help: 'Problems /healthz lists',
      registers: [registry],
      collect() {
        this.set(((gw.health().problems as unknown[] | undefined) ?? []).length);
      },
    });
    new p.Gauge({
      name: 'langbiang_bus_queue_depth',
      help: 'Requests waiting on the bus queue',
      labelNames: ['bus'],
      registers: [registry],
      collect() {
        this.reset();
        for (const b of gw.busHealth()) this.set({ bus: b.bus }, b.queueDepth);
      },
    });
    new p.Gauge({
      name: 'langbiang_bus_open',
      help: '1 when the bus port/socket is open',
      labelNames: ['bus'],
      registers: [registry],
      collect() {
        this.reset();
        for (const b of gw.busHealth()) this.set({ bus: b.bus }, b.open ? 1 : 0);
      },
    });
    new p.Gauge({
      name: 'langbiang_store_readings',
      help: 'Readings held in the store',
      registers: [registry],
      collect() {
        this.set(gw.store.stats().readings);
      },
    });
    new p.Gauge({
      name: 'langbiang_store_last_seq',
      help: 'Newest committed seq',
      registers: [registry],
      collect() {
        this.set(gw.store.lastSeq());
      },
    });
    const agentStatus = (): SyncStatus | undefined => {
      try {
        return gw.sync?.status() as SyncStatus | undefined;
      } catch {
        return undefined;
      }
    };
    new p.Gauge({
      name: 'langbiang_sync_backlog_readings',
      help: 'Readings stored but not yet acknowledged by the city broker',
      registers: [registry],
      collect() {
        // the agent knows about acknowledgements ahead of the cursor; without one, the cursor says it
        const agent = agentStatus();
        this.set(agent?.backlog ?? Math.max(0, gw.store.lastSeq() - gw.store.getCursor(SYNC_CURSOR)));
      },
    });
    // The end-to-end view: what the city has confirmed it stored (docs/protocol.md).
    new p.Gauge({
      name: 'langbiang_sync_unconfirmed_readings',
      help: 'Readings stored but not yet confirmed by the city receiver (end-to-end acknowledgement)',
      registers: [registry],
      collect() {
        const s = agentStatus();
        this.set(s?.unconfirmed ?? Math.max(0, gw.store.lastSeq() - gw.store.getCursor(CONFIRMED_CURSOR)));
      },
    });
    new p.Gauge({
      name: 'langbiang_sync_oldest_unconfirmed_age_seconds',
      help: 'Age of the oldest reading not yet confirmed by the city (0 when none)',
      registers: [registry],
      collect() {
        this.set(agentStatus()?.oldestUnconfirmedAgeS ?? 0);
      },
    });
    new p.Gauge({
      name: 'langbiang_sync_last_confirm_timestamp_seconds',
      help: 'Unix time of the last end-to-end acknowledgement that confirmed readings (0 before the first)',
      registers: [registry],
      collect() {
        const at = agentStatus()?.lastConfirmAt;
        this.set(at ? at / 1000 : 0);
      },
    });
    new p.Counter({
      name: 'langbiang_sync_resends_total',
      help: 'Times everything unconfirmed was sent again (confirmation stalled, or the broker lost the session)',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(agentStatus()?.resends ?? 0);
      },
    });
    new p.Gauge({
      name: 'langbiang_sync_confirm_by_city',
      help: '1 when delivery is confirmed by the city receiver end to end, 0 when by the broker PUBACK',
      registers: [registry],
      collect() {
        const s = agentStatus();
        this.set(s?.confirmMode === 'city' ? 1 : 0);
      },
    });
    new p.Gauge({
      name: 'langbiang_store_gap_events',
      help: 'Gap events recorded (readings dropped by the caps before they were synced)',
      registers: [registry],
      collect() {
        this.set(gw.store.stats().gaps);
      },
    });
    new p.Counter({
      name: 'langbiang_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [k, v] of deps.counters.requests) {
          const [method, route, status] = k.split(' ');
          this.inc({ method, route, status }, v);
        }
      },
    });
    new p.Counter({
      name: 'langbiang_http_login_failures_total',
      help: 'Failed logins',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(deps.counters.loginFailures);
      },
    });
    new p.Gauge({
      name: 'langbiang_http_live_clients',
      help: 'Open live-value (SSE) connections',
      registers: [registry],
      collect() {
        this.set(deps.counters.sseClients);
      },
    });
    p.collectDefaultMetrics({ register: registry, prefix: 'langbiang_process_' });
    this.registry = registry;
  }
}
