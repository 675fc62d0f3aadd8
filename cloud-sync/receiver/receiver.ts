import type { KeyObject } from 'node:crypto';
import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt';
import { describeError, LangbiangError } from '../../gateway/core/errors.js';
import type { Logger } from '../../gateway/core/log.js';
import { LogLimiter } from '../../gateway/core/log-limiter.js';
import { signMessage } from '../../gateway/core/signed.js';
import {
  ACK_PACE_MS,
  ACK_SIGNATURE_LIFETIME_MS,
  ACK_VERSION,
  type AckMessage,
  encodeAck,
  encodeCompactAck,
} from '../protocol/ack.js';
import { decodeEvents } from '../protocol/events.js';
import { decodeTelemetry } from '../protocol/native.js';
import { decodeStatus } from '../protocol/status.js';
import { parseTopic, TOPIC_ROOT, topicsFor } from '../protocol/topics.js';
import { type ReceiverStore, redactUrl } from './store.js';
import { eventsProblem, telemetryProblem } from './validate.js';

export const DEFAULT_GROUP = 'langbiang-receivers';

/** The receiver logs through the project's one Logger (gateway/core/log.ts). */
export type ReceiverLogger = Logger;

export interface ReceiverOptions {
  /** mqtt://, mqtts://, ws://, wss:// */
  brokerUrl: string;
  store: ReceiverStore;
  /** shared-subscription group: receivers in one group split the messages between them */
  group?: string;
  /**
   * A plain subscription instead of a shared one, for a single receiver. Some brokers (Mosquitto
   * 2.0.11, Debian 12's) do not restore shared subscriptions from their persistence file: after a
   * broker restart, what gateways publish before the receivers have subscribed again is lost. A
   * plain subscription of a persistent session is restored, so nothing is.
   */
  exclusive?: boolean;
  /**
   * Stable MQTT client id. The session outlives a crash (clean start off, session expiry below),
   * so what the broker sent but this receiver had not acknowledged is sent again when it returns.
   */
  clientId: string;
  /** seconds the broker keeps the session (and queues for it) while this receiver is away; default 1 day */
  sessionExpirySeconds?: number;
  username?: string;
  password?: string;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  logger?: ReceiverLogger;
  /** reconnect backoff bounds, ms (default 500 .. 30000), with jitter */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** messages the broker may have in flight to this receiver (MQTT 5 receive maximum; default 32) */
  receiveMaximum?: number;
  /**
   * Publish end-to-end acknowledgements on `…/{gw}/ack` (default true). Off only for a receiver
   * that runs beside another one that acknowledges: a gateway keeps what is not acknowledged.
   */
  acknowledge?: boolean;
  /** pending acks are looked at this often (default 250 ms): prompt acks are coalesced to it */
  ackIntervalMs?: number;
  /**
   * In live operation, at most one ack per gateway (and epoch) per this many ms (default 60 s,
   * the protocol's longest): a batch that asks for a prompt ack (a drain, a resend, a lagging
   * confirmation) and every events message are acked at the next look instead.
   */
  ackPaceMs?: number;
  /**
   * Sign every ack with this receiver key (Ed25519): a gateway that pins its public key takes
   * only signed acks, so nobody else on the broker can tell it the city stored what it did not.
   */
  ackKey?: { name: string; key: KeyObject };
  /**
   * Keep each gateway's retained `status` for the fleet view (default true). A plain subscription,
   * not a shared one: brokers send retained messages to plain subscriptions only, and every
   * receiver of a group storing the same last status is harmless.
   */
  fleetStatus?: boolean;
}

export interface ReceiverStats {
  /** messages taken from the broker (each acknowledged once stored or found malformed) */
  messages: number;
  telemetryMessages: number;
  eventMessages: number;
  readingsInserted: number;
  /** readings already held: redeliveries and replays, absorbed by the (gateway, epoch, seq) key */
  duplicates: number;
  eventsInserted: number;
  eventDuplicates: number;
  /** gateway `status` messages kept for the fleet view */
  statusMessages: number;
  /** undecodable or inconsistent messages: logged (rate-limited), acknowledged, dropped */
  malformed: number;
  /** database writes that failed; the message was not acknowledged and comes back after a reconnect */
  writeErrors: number;
  /** end-to-end acknowledgements published (coalesced: at most one per gateway per ackIntervalMs) */
  acksPublished: number;
  /** telemetry messages committed whole, their rows written when the receiver is idle (SQLite) */
  telemetryLanded: number;
  connected: boolean;
  /** wall ms of the last stored message */
  lastMessageAt?: number;
}

/** An ack waiting for its flush; `prompt`: the gateway asked for it now. */
interface PendingAck {
  ack: AckMessage;
  prompt: boolean;
}

const silent: ReceiverLogger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * The reference receiver: one member of an MQTT 5 shared subscription on every gateway's
 * telemetry and events. Each message is decoded, checked, written in one idempotent transaction,
 * and only then acknowledged (PUBACK): a receiver killed before its commit leaves the message
 * unacknowledged in its broker session, and the broker sends it again.
 */
export class Receiver {
  private client: MqttClient | undefined;
  private readonly log: ReceiverLogger;
  private readonly group: string;
  private readonly malformedLog = new LogLimiter(10, 60_000);
  private readonly s: ReceiverStats = {
    messages: 0,
    telemetryMessages: 0,
    eventMessages: 0,
    readingsInserted: 0,
    duplicates: 0,
    eventsInserted: 0,
    eventDuplicates: 0,
    statusMessages: 0,
    malformed: 0,
    writeErrors: 0,
    acksPublished: 0,
    telemetryLanded: 0,
    connected: false,
  };
  /** the newest watermarks per gateway and epoch, waiting for the next ack flush */
  private readonly pendingAcks = new Map<string, PendingAck>();
  /** per gateway and epoch: when its last ack went (mono ms), and whether it reads compact acks */
  private readonly ackPeers = new Map<string, { sentAt: number; compact: boolean }>();
  private ackTimer: NodeJS.Timeout | undefined;
  /** bumped on every connect and close: an ack is only ever sent on the connection the message came on */
  private generation = 0;
  private reconnects = 0;
  private storeFailures = 0;
  private stopping = false;
  private inFlight: Promise<void> | undefined;
  private readyResolve!: () => void;
  private readonly readyPromise = new Promise<void>((r) => {
    this.readyResolve = r;
  });

  constructor(private readonly opts: ReceiverOptions) {
    this.log = opts.logger ?? silent;
    this.group = opts.group ?? DEFAULT_GROUP;
    if (!/^[^/+#$]+$/.test(this.group)) {
      throw new LangbiangError(
        'USAGE',
        `bad shared-subscription group ${JSON.stringify(this.group)}: no / + # $ allowed`,
      );
    }
  }

  /** The shared subscriptions this receiver takes part in. */
  topics(): string[] {
    const prefix = this.opts.exclusive ? '' : `$share/${this.group}/`;
    return [`${prefix}${TOPIC_ROOT}/+/telemetry`, `${prefix}${TOPIC_ROOT}/+/events`];
  }

  /** The plain subscription on every gateway's retained status (fleet view), if kept. */
  statusTopic(): string | undefined {
    return this.opts.fleetStatus === false ? undefined : `${TOPIC_ROOT}/+/status`;
  }

  stats(): ReceiverStats {
    return { ...this.s };
  }

  /** Resolves once subscribed for the first time. */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  /** Starts connecting (and keeps trying with backoff); see ready(). */
  async start(): Promise<void> {
    const mqtt = await import('mqtt');
    const o = this.opts;
    const options: IClientOptions = {
      protocolVersion: 5,
      clientId: o.clientId,
      clean: false,
      properties: {
        sessionExpiryInterval: o.sessionExpirySeconds ?? 86_400,
        receiveMaximum: o.receiveMaximum ?? 32,
      },
      keepalive: 30,
      connectTimeout: 10_000,
      reconnectPeriod: this.minBackoff(),
      // we subscribe ourselves on each connect (the session may have expired while we were away)
      resubscribe: false,
      queueQoSZero: false,
    };
    if (o.username !== undefined) options.username = o.username;
    if (o.password !== undefined) options.password = o.password;
    if (o.tls?.ca) options.ca = o.tls.ca;
    if (o.tls?.cert) options.cert = o.tls.cert;
    if (o.tls?.key) options.key = o.tls.key;
    const client = (mqtt.default?.connect ?? mqtt.connect)(o.brokerUrl, options);
    this.client = client;
    // mqtt.js calls handleMessage before it sends PUBACK for a QoS 1 message, and handles the next
    // packet only after the callback: the ack waits for our commit, and messages are taken in order.
    client.handleMessage = (packet, done) => {
      this.onMessage(packet as IPublishPacket, done);
    };
    client.on('connect', (connack) => {
      this.generation++;
      this.reconnects = 0;
      this.s.connected = true;
      this.setReconnectPeriod();
      this.log.info(
        { broker: redactUrl(o.brokerUrl), clientId: o.clientId, sessionPresent: connack.sessionPresent },
        'receiver connected',
      );
      client.subscribe(this.topics(), { qos: 1 }, (err, granted) => {
        if (err) {
          this.log.error({ err: describeError(err) }, 'receiver subscribe failed');
          return;
        }
        const refused = (granted ?? []).filter((g) => g.qos > 2);
        if (refused.length) {
          this.log.error(
            { topics: refused.map((g) => g.topic) },
            'the broker refused the subscription (check its ACL for this client)',
          );
          return;
        }
        this.log.info({ topics: this.topics() }, 'receiver subscribed');
        this.subscribeStatus(client);
      });
    });
    if (o.acknowledge !== false) {
      this.ackTimer = setInterval(() => this.flushAcks(), o.ackIntervalMs ?? 250);
      this.ackTimer.unref();
    }
    client.on('reconnect', () => {
      this.reconnects++;
      this.setReconnectPeriod();
    });
    client.on('close', () => {
      // a stop() closes the connection on purpose: that is a shutdown, not a lost broker
      if (this.s.connected && !this.stopping)
        this.log.warn({ broker: redactUrl(o.brokerUrl) }, 'receiver lost the broker; reconnecting');
      this.generation++;
      this.s.connected = false;
    });
    client.on('error', (err) => {
      this.log.warn({ err: describeError(err) }, 'receiver MQTT error');
    });
  }

  /**
   * After the data subscriptions. A broker whose ACL refuses it costs the fleet view only: the
   * receiver goes on storing data.
   */
  private subscribeStatus(client: MqttClient): void {
    const topic = this.statusTopic();
    if (!topic) {
      this.readyResolve();
      return;
    }
    client.subscribe(topic, { qos: 1 }, (err, granted) => {
      if (err || (granted ?? []).some((g) => g.qos > 2))
        this.log.warn(
          { topic, err: err ? describeError(err) : 'refused by the broker' },
          'status subscription failed: the fleet view will miss gateway status (check the ACL)',
        );
      this.readyResolve();
    });
  }

  /** Finishes the message in hand, disconnects (the session stays on the broker), closes the store. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.ackTimer) clearInterval(this.ackTimer);
    const c = this.client;
    if (c) {
      c.options.reconnectPeriod = 0;
      if (this.inFlight) await this.inFlight.catch(() => {});
      // what was committed is acknowledged before leaving (a gateway would otherwise wait and resend)
      await Promise.race([this.flushAcks(true), new Promise((r) => setTimeout(r, 1000))]);
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          c.end(true, {}, () => resolve());
        }, 3000);
        c.end(false, {}, () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    this.s.connected = false;
    await this.opts.store.close();
    this.log.info({ ...this.stats() }, 'receiver stopped');
  }

  private onMessage(packet: IPublishPacket, done: (err?: Error) => void): void {
    const gen = this.generation;
    const work = this.handle(packet).then(
      () => {
        this.storeFailures = 0;
        // An ack after the connection changed would name a packet id of another session.
        if (gen === this.generation) done();
      },
      (err: unknown) => {
        this.s.writeErrors++;
        this.storeFailures++;
        this.log.error(
          { err: describeError(err), topic: packet.topic, failures: this.storeFailures },
          'receiver database write failed; the message stays unacknowledged and will come again',
        );
        // Without an ack the broker resends only on a new connection: drop this one, come back later.
        this.setReconnectPeriod();
        if (gen === this.generation) this.client?.stream?.destroy();
      },
    );
    this.inFlight = work;
  }

  private async handle(packet: IPublishPacket): Promise<void> {
    this.s.messages++;
    const topic = packet.topic;
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : (packet.payload as Buffer);
    const t = parseTopic(topic);
    if (!t || (t.kind !== 'telemetry' && t.kind !== 'events' && t.kind !== 'status')) {
      this.malformed(topic, 'not a telemetry, events or status topic');
      return;
    }
    const now = Date.now();
    if (t.kind === 'status') {
      // an empty retained message clears the topic (a gateway decommissioned): nothing to keep
      if (payload.length === 0) return;
      let status: ReturnType<typeof decodeStatus>;
      try {
        status = decodeStatus(payload);
      } catch (err) {
        this.malformed(topic, describeError(err));
        return;
      }
      if (status.gateway !== t.gateway || typeof status.ts !== 'number') {
        this.malformed(topic, `status names gateway ${JSON.stringify(status.gateway)} on another's topic or has no ts`);
        return;
      }
      await this.opts.store.putStatus(status, now);
      this.s.statusMessages++;
      return;
    }
    if (t.kind === 'telemetry') {
      this.s.telemetryMessages++;
      let batch: ReturnType<typeof decodeTelemetry>;
      try {
        // version 2 names its gateway only in the topic
        batch = decodeTelemetry(payload, { gateway: t.gateway });
      } catch (err) {
        this.malformed(topic, describeError(err));
        return;
      }
      const problem = telemetryProblem(batch, t.gateway);
      if (problem) {
        this.malformed(topic, problem);
        return;
      }
      const r = await this.opts.store.writeTelemetry(batch, now, payload);
      this.s.readingsInserted += r.inserted;
      this.s.duplicates += r.duplicates;
      if (r.landed) this.s.telemetryLanded++;
      this.queueAck(batch.gateway, batch.epoch, r.watermarks.seq, r.watermarks.events, {
        prompt: batch.promptAck === true,
        compact: batch.compactAck === true,
      });
      this.log.debug(
        {
          gateway: batch.gateway,
          firstSeq: batch.firstSeq,
          lastSeq: batch.lastSeq,
          inserted: r.inserted,
          duplicates: r.duplicates,
        },
        'telemetry stored',
      );
    } else {
      this.s.eventMessages++;
      let batch: ReturnType<typeof decodeEvents>;
      try {
        batch = decodeEvents(payload);
      } catch (err) {
        this.malformed(topic, describeError(err));
        return;
      }
      const problem = eventsProblem(batch, t.gateway);
      if (problem) {
        this.malformed(topic, problem);
        return;
      }
      const r = await this.opts.store.writeEvents(batch, now);
      this.s.eventsInserted += r.inserted;
      this.s.eventDuplicates += r.duplicates;
      // events are rare and their confirmation is what lets a gateway forget a gap: ack them promptly
      this.queueAck(batch.gateway, batch.epoch, r.watermarks.seq, r.watermarks.events, { prompt: true });
      for (const e of batch.events) {
        if (e.kind === 'gap')
          this.log.warn({ gateway: batch.gateway, epoch: batch.epoch, ...e.data }, 'gateway reported a gap');
      }
    }
    this.s.lastMessageAt = now;
  }

  /**
   * After a commit: the watermarks computed in its transaction wait for the next flush. Acks are
   * sent even when they did not move — a gateway resending what the city already holds needs to
   * hear it, and an ack lost with a broker must be repeated by the next commit.
   */
  private queueAck(
    gateway: string,
    epoch: string,
    seq: number,
    events: number,
    how: { prompt: boolean; compact?: boolean },
  ): void {
    if (this.opts.acknowledge === false) return;
    const key = `${gateway}\u0000${epoch}`;
    const prev = this.pendingAcks.get(key);
    // what a gateway's telemetry says it reads holds for its events too (they carry no flags)
    if (how.compact !== undefined) {
      const peer = this.ackPeers.get(key);
      if (peer) peer.compact = how.compact;
      else this.ackPeers.set(key, { sentAt: Number.NEGATIVE_INFINITY, compact: how.compact });
    }
    this.pendingAcks.set(key, {
      ack: {
        v: ACK_VERSION,
        gateway,
        epoch,
        seq: Math.max(seq, prev?.ack.seq ?? 0),
        events: Math.max(events, prev?.ack.events ?? 0),
        ts: Date.now(),
      },
      prompt: how.prompt || prev?.prompt === true,
    });
  }

  /**
   * Publishes the pending acks that are due (QoS 1): prompt ones, and the others once the pace
   * allows (`all`: every one, on stopping). Without a connection they wait — the next commit
   * renews them.
   */
  private flushAcks(all = false): Promise<void> {
    const c = this.client;
    if (!c || !this.s.connected || this.pendingAcks.size === 0) return Promise.resolve();
    const now = performance.now();
    const pace = this.opts.ackPaceMs ?? ACK_PACE_MS;
    const acks: { ack: AckMessage; compact: boolean }[] = [];
    for (const [key, p] of this.pendingAcks) {
      let peer = this.ackPeers.get(key);
      if (!all && !p.prompt && peer && now - peer.sentAt < pace) continue;
      if (!peer) {
        peer = { sentAt: now, compact: false };
        this.ackPeers.set(key, peer);
      }
      peer.sentAt = now;
      this.pendingAcks.delete(key);
      acks.push({ ack: p.ack, compact: peer.compact });
    }
    return Promise.all(
      acks.map(
        ({ ack: a, compact }) =>
          new Promise<void>((resolve) => {
            c.publish(topicsFor(a.gateway).ack, this.ackPayload(a, compact), { qos: 1 }, (err) => {
              if (err) {
                this.log.warn({ gateway: a.gateway, err: describeError(err) }, 'ack publish failed');
                this.requeueAck(a);
              } else this.s.acksPublished++;
              resolve();
            });
          }),
      ),
    ).then(() => {});
  }

  /** An ack that did not go is due again at once (unless a newer one already waits). */
  private requeueAck(a: AckMessage): void {
    const key = `${a.gateway}\u0000${a.epoch}`;
    const peer = this.ackPeers.get(key);
    if (peer) peer.sentAt = Number.NEGATIVE_INFINITY;
    if (!this.pendingAcks.has(key)) this.pendingAcks.set(key, { ack: a, prompt: true });
  }

  /** Signed acks stay JSON (the signed envelope); unsigned ones are compact for a gateway that reads them. */
  private ackPayload(a: AckMessage, compact: boolean): Buffer {
    const k = this.opts.ackKey;
    if (!k) return compact ? encodeCompactAck(a) : encodeAck(a);
    return signMessage({
      kind: 'ack',
      gateway: a.gateway,
      message: { ...a },
      issuedAt: a.ts,
      expiresAt: a.ts + ACK_SIGNATURE_LIFETIME_MS,
      keyName: k.name,
      privateKey: k.key,
    });
  }

  private malformed(topic: string, why: string): void {
    this.s.malformed++;
    const ok = this.malformedLog.take();
    if (ok) {
      this.log.warn(
        { topic, why, malformedTotal: this.s.malformed, notLogged: ok.suppressed || undefined },
        'malformed message dropped',
      );
    }
  }

  private minBackoff(): number {
    return this.opts.reconnectMinMs ?? 500;
  }

  /** Exponential backoff with full jitter over both broker and database failures. */
  private setReconnectPeriod(): void {
    const c = this.client;
    if (!c || this.stopping) return;
    const min = this.minBackoff();
    const max = this.opts.reconnectMaxMs ?? 30_000;
    const n = Math.max(this.reconnects, this.storeFailures);
    const cap = Math.min(max, min * 2 ** Math.min(n, 16));
    c.options.reconnectPeriod = Math.round(min + Math.random() * (cap - min));
  }
}
