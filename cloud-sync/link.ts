import type { IClientOptions, IClientPublishOptions, MqttClient } from 'mqtt';
import { describeError } from '../gateway/core/errors.js';
import { type BrokerSettings, clientOptions, redactUrl } from './connection.js';
import type { SyncLogger } from './log.js';
import { loadMqttConnect, type MqttConnect } from './mqtt-connect.js';
import { backoffDelay } from './pacing.js';

/** What the link tells its owner. */
export interface LinkHandlers {
  /** a connection is up and subscribed to; `sessionPresent` is the broker's CONNACK flag */
  up(sessionPresent: boolean): void;
  /** the connection is gone: whatever was in flight on it is forgotten (and sent again from SQLite) */
  down(): void;
  message(topic: string, payload: Buffer): void;
}

export interface MqttLinkOptions {
  broker: BrokerSettings;
  /** the LWT of each new connection (made at connect time: it carries that moment) */
  will: () => { topic: string; payload: Buffer };
  /** topics subscribed (QoS 1) on every connection: the session may have expired meanwhile */
  subscriptions: string[];
  reconnectMinMs: number;
  reconnectMaxMs: number;
  log: SyncLogger;
}

/**
 * The MQTT link's life cycle, and nothing else: one fresh mqtt.js client per connection
 * (mqtt.js never reconnects or resends by itself), reconnect with backoff and jitter, and
 * publishes that only ever complete on the connection they were made on. What to send, and what
 * an acknowledgement means, is the pumps' business.
 */
export class MqttLink {
  private connectFn: MqttConnect | null = null;
  private client: MqttClient | null = null;
  /** bumped whenever a connection ends: callbacks of an older connection are dropped */
  private gen = 0;
  private connected = false;
  private running = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private handlers: LinkHandlers | null = null;
  /** successful connections since start */
  connects = 0;
  /** the last connection problem, null once connected */
  lastError: string | null = null;

  constructor(private readonly o: MqttLinkOptions) {}

  get up(): boolean {
    return this.connected;
  }

  get url(): string {
    return redactUrl(this.o.broker.url);
  }

  async start(handlers: LinkHandlers): Promise<void> {
    if (this.running) return;
    this.connectFn = await loadMqttConnect(this.o.broker.url);
    this.handlers = handlers;
    this.running = true;
    this.open();
  }

  /**
   * Publishes on the current connection; false (and no callback) when there is none. The callback
   * runs only if the connection is still the one the message went out on.
   */
  publish(topic: string, payload: Buffer, opts: IClientPublishOptions, cb?: (err?: Error) => void): boolean {
    const client = this.client;
    if (!client || !this.connected) return false;
    const gen = this.gen;
    client.publish(topic, payload, opts, (err) => {
      if (cb && gen === this.gen) cb(err ?? undefined);
    });
    return true;
  }

  /** Drops the connection now (a stall, a refused publish) and reconnects after the backoff. */
  restart(why: string, opts: { resetBackoff?: boolean } = {}): void {
    if (opts.resetBackoff) this.attempt = 0;
    this.lost(this.gen, why);
  }

  /**
   * Leaves cleanly: publishes `last` (the retained offline status) and disconnects normally, so
   * the broker does not publish the LWT. Waits at most about two seconds.
   */
  async stop(last?: { topic: string; payload: Buffer }): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const client = this.client;
    if (client && this.connected) {
      if (last) {
        await withTimeout(
          new Promise<void>((resolve) =>
            client.publish(last.topic, last.payload, { qos: 1, retain: true }, () => resolve()),
          ),
          1000,
        );
      }
      await withTimeout(new Promise<void>((resolve) => client.end(false, {}, () => resolve())), 1000);
    }
    this.drop();
  }

  private open(): void {
    if (!this.running || !this.connectFn) return;
    let options: IClientOptions;
    try {
      options = clientOptions(this.o.broker, this.o.will());
    } catch (err) {
      this.failed(err);
      return;
    }
    const gen = ++this.gen;
    let client: MqttClient;
    try {
      client = this.connectFn(this.o.broker.url, options);
    } catch (err) {
      this.failed(err);
      return;
    }
    this.client = client;
    client.on('connect', (connack) => {
      if (gen !== this.gen) return;
      this.connected = true;
      this.connects++;
      this.attempt = 0;
      this.lastError = null;
      for (const topic of this.o.subscriptions) {
        client.subscribe(topic, { qos: 1 }, (err, granted) => {
          if (err) this.o.log.warn({ topic, err: describeError(err) }, 'subscription refused');
          else if ((granted ?? []).some((g) => g.qos > 2))
            this.o.log.warn({ topic }, 'the broker refused the subscription (check its ACL for this client)');
        });
      }
      this.handlers?.up(connack.sessionPresent === true);
    });
    client.on('message', (topic, payload) => {
      if (gen === this.gen) this.handlers?.message(topic, payload);
    });
    client.on('error', (err) => {
      if (gen !== this.gen) return;
      this.lastError = describeError(err);
      if (!this.connected) this.lost(gen, 'connect failed');
    });
    client.on('disconnect', (packet) => {
      if (gen === this.gen) this.lastError = `broker sent DISCONNECT (reason ${packet.reasonCode ?? 0})`;
    });
    client.on('close', () => {
      if (gen === this.gen) this.lost(gen, 'connection closed');
    });
  }

  private failed(err: unknown): void {
    this.lastError = describeError(err);
    this.o.log.error({ err: this.lastError }, 'cannot connect to the broker');
    this.scheduleReconnect();
  }

  private lost(gen: number, why: string): void {
    if (gen !== this.gen) return;
    const was = this.connected;
    this.drop();
    if (was) this.o.log.warn({ why, err: this.lastError }, 'broker connection lost');
    this.handlers?.down();
    this.scheduleReconnect();
  }

  private drop(): void {
    this.gen++;
    this.connected = false;
    const c = this.client;
    this.client = null;
    if (c) {
      c.removeAllListeners();
      // a late socket error on a dropped client must not become an uncaught exception
      c.on('error', () => {});
      c.end(true);
    }
  }

  private scheduleReconnect(): void {
    if (!this.running || this.reconnectTimer) return;
    const delay = backoffDelay(this.attempt++, this.o.reconnectMinMs, this.o.reconnectMaxMs);
    this.o.log.info({ delayMs: delay, attempt: this.attempt, err: this.lastError }, 'reconnecting to the broker later');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.open();
    }, delay);
    this.reconnectTimer.unref();
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      () => {
        clearTimeout(t);
        resolve(undefined);
      },
    );
  });
}
