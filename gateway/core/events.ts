import { EventEmitter } from 'node:events';
import type { DeviceHealth } from './driver.js';
import type { GapEvent, StoredReading } from './reading.js';

/** The gateway's health as /healthz says it: `degraded` when there is any problem. */
export interface GatewayHealthChange {
  status: 'ok' | 'degraded';
  problems: string[];
}

/** Everything that happens inside a gateway that more than one part cares about. */
export interface GatewayEventMap {
  readings: [StoredReading[]];
  gap: [GapEvent];
  'device-health': [DeviceHealth];
  /** the gateway's problems in words changed (or were first seen): the log line and systemd's status */
  'gateway-health': [GatewayHealthChange];
  'bus-state': [{ bus: string; open: boolean; error?: string }];
  'clock-synced': [{ stepMs: number; corrected: number }];
  /** a local alarm changed (raised, cleared, fault, fault_cleared): the live panel's banner */
  alarm: [{ id: string; transition: string; state: string; fault: boolean }];
}

/** A typed EventEmitter: listeners that throw are the listener's problem, not the poll loop's. */
export class EventBus {
  private readonly ee = new EventEmitter();

  constructor() {
    this.ee.setMaxListeners(100);
  }

  on<K extends keyof GatewayEventMap>(event: K, listener: (...args: GatewayEventMap[K]) => void): () => void {
    const safe = (...args: GatewayEventMap[K]) => {
      try {
        listener(...args);
      } catch (err) {
        this.ee.emit('listener-error', err);
      }
    };
    this.ee.on(event, safe as (...a: unknown[]) => void);
    return () => this.ee.off(event, safe as (...a: unknown[]) => void);
  }

  emit<K extends keyof GatewayEventMap>(event: K, ...args: GatewayEventMap[K]): void {
    this.ee.emit(event, ...args);
  }

  onListenerError(fn: (err: unknown) => void): void {
    this.ee.on('listener-error', fn);
  }
}
