/**
 * Sizes of the MQTT control packets, written from the MQTT 3.1.1 and 5.0 specifications (not
 * from the client library the gateway uses), and a tally of every byte one connection carries
 * both ways. The wire benchmark uses it for our link and for the ThingsBoard baselines alike, so
 * both sides pay the same framing, acknowledgements, keep-alives and reconnects. A PUBLISH is sized
 * by the protocol module the gateway's own byte budget uses; test/integration/bench-mqtt-bytes
 * checks every size here against a real connection.
 */
import { publishPacketBytes, varintLen } from '../cloud-sync/protocol/size.js';

/** fixed header byte + Remaining Length + the rest */
const packet = (remaining: number) => 1 + varintLen(remaining) + remaining;
/** a UTF-8 string or binary field: 2-byte length + bytes */
const field = (s: string | number) => 2 + (typeof s === 'number' ? s : Buffer.byteLength(s));

/** PUBACK: fixed header, packet id (MQTT 5 omits reason code "success" and properties). */
export const PUBACK_BYTES = 4;
/** PINGREQ and PINGRESP: 2 bytes each. */
export const PING_BYTES = 2 + 2;

export interface ConnectShape {
  mqtt5: boolean;
  clientId: string;
  keepaliveS: number;
  /** MQTT 5 Session Expiry Interval property (5 bytes), when set */
  sessionExpiry?: boolean;
  will?: { topic: string; payloadBytes: number };
  username?: string;
  password?: string;
}

/** CONNECT: "MQTT", level, flags, keep-alive, [properties], client id, [will], [user, password]. */
export function connectBytes(c: ConnectShape): number {
  let remaining = field('MQTT') + 1 + 1 + 2;
  if (c.mqtt5) remaining += 1 + (c.sessionExpiry ? 5 : 0);
  remaining += field(c.clientId);
  if (c.will) remaining += (c.mqtt5 ? 1 : 0) + field(c.will.topic) + field(c.will.payloadBytes);
  if (c.username !== undefined) remaining += field(c.username);
  if (c.password !== undefined) remaining += field(c.password);
  return packet(remaining);
}

/**
 * CONNACK: 4 bytes in 3.1.1; in MQTT 5 flags, reason code and the broker's properties. Mosquitto 2
 * announces Topic Alias Maximum and Receive Maximum (3 bytes each) at its defaults.
 */
export function connackBytes(mqtt5: boolean): number {
  return mqtt5 ? packet(1 + 1 + 1 + 3 + 3) : 4;
}

/** A SUBACK of one topic: packet id, [properties], one reason code. */
export function subackBytes(mqtt5: boolean): number {
  return packet(2 + (mqtt5 ? 1 : 0) + 1);
}

/** One SUBSCRIBE of one topic and its SUBACK. */
export function subscribeBytes(topic: string, mqtt5: boolean): number {
  return packet(2 + (mqtt5 ? 1 : 0) + field(topic) + 1) + subackBytes(mqtt5);
}

/** A QoS 1 PUBLISH (topic or alias, packet id, MQTT 5 properties): the protocol's own sizing. */
export const publishBytes = publishPacketBytes;

export type TallyKey = 'payload' | 'framing' | 'puback' | 'session' | 'ping' | 'status' | 'ack';

/**
 * Every byte of one MQTT connection, both ways, by what it is for. Time moves forward through
 * `at(t)`; a client sends PINGREQ after `keepaliveS` without an acknowledgement from the broker (as
 * mqtt.js 5 and paho do), so the tally adds a ping for each such silence.
 */
export class ConnectionTally {
  readonly bytes: Record<TallyKey, number> = {
    payload: 0,
    framing: 0,
    puback: 0,
    session: 0,
    ping: 0,
    status: 0,
    ack: 0,
  };
  private lastHeard = Number.NEGATIVE_INFINITY;

  constructor(private readonly keepaliveMs: number) {}

  /** The clock reaches t: pings for every keep-alive interval spent without hearing the broker. */
  at(t: number): void {
    if (this.lastHeard === Number.NEGATIVE_INFINITY) this.lastHeard = t;
    while (t - this.lastHeard >= this.keepaliveMs) {
      this.bytes.ping += PING_BYTES;
      this.lastHeard += this.keepaliveMs;
    }
  }

  /** a connection: CONNECT, CONNACK and the subscriptions (their SUBACKs reset the keep-alive) */
  connect(t: number, connect: number, subscriptions: number): void {
    this.lastHeard = t;
    this.bytes.session += connect + subscriptions;
  }

  /** one QoS 1 PUBLISH we send, split into payload and framing, and the broker's PUBACK */
  publish(t: number, packetBytes: number, payloadBytes: number, as: 'data' | 'status' = 'data'): void {
    this.at(t);
    if (as === 'status') this.bytes.status += packetBytes;
    else {
      this.bytes.payload += payloadBytes;
      this.bytes.framing += packetBytes - payloadBytes;
    }
    this.bytes.puback += PUBACK_BYTES;
    this.lastHeard = t;
  }

  /** one QoS 1 PUBLISH the broker sends us (the city's ack) and our PUBACK */
  receive(t: number, packetBytes: number): void {
    this.at(t);
    this.bytes.ack += packetBytes;
    this.bytes.puback += PUBACK_BYTES;
    // an incoming PUBLISH does not reset mqtt.js's keep-alive timer (only acknowledgements do)
  }

  total(): number {
    return Object.values(this.bytes).reduce((a, b) => a + b, 0);
  }
}
