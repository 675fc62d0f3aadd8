import { readFileSync } from 'node:fs';
import type { IClientOptions } from 'mqtt';
import { describeError, LangbiangError } from '../gateway/core/errors.js';

/** How to reach the broker: the `sync` config section, minus what the agent does itself. */
export interface BrokerSettings {
  url: string;
  clientId: string;
  tls?: { ca?: string; cert?: string; key?: string };
  username?: string;
  /** file holding the password; read at every connect (so it can be rotated), never logged */
  passwordFile?: string;
  keepaliveS: number;
  connectTimeoutMs: number;
  sessionExpiryS: number;
}

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new LangbiangError('CONFIG_INVALID', `${what}: cannot read ${path} (${describeError(err)})`);
  }
}

/** What may be logged about a broker URL: never credentials that someone put in it. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = u.username ? '***' : '';
      u.password = u.password ? '***' : '';
    }
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/**
 * mqtt.js options for one connection attempt. mqtt.js never reconnects or resends on its own
 * (reconnectPeriod 0, a fresh client per connection): the truth is in SQLite, and the agent
 * re-sends from its cursor.
 */
export function clientOptions(s: BrokerSettings, will: { topic: string; payload: Buffer }): IClientOptions {
  const o: IClientOptions = {
    clientId: s.clientId,
    protocolVersion: 5,
    // A persistent session lets the broker keep the cmd subscription and queue commands while the
    // link is down; commands carry deadlines, so a stale one is refused, not run late.
    clean: false,
    properties: { sessionExpiryInterval: s.sessionExpiryS },
    keepalive: s.keepaliveS,
    connectTimeout: s.connectTimeoutMs,
    reconnectPeriod: 0,
    queueQoSZero: false,
    resubscribe: false,
    // MQTT 5 topic aliases: after its first message on a connection a topic costs 3 bytes instead
    // of ~35 (a broker that allows none, topicAliasMaximum 0, just gets the full topic each time).
    autoAssignTopicAlias: true,
    // mqtt-packet's number cache is 65,536 two-byte Buffers, built at the first packet and kept for
    // the life of the process: ~6.5 MB of heap (Buffer objects and their dictionary) for a few
    // bytes saved per packet. Off, each packet id and length is a tiny Buffer that dies young.
    writeCache: false,
    will: { topic: will.topic, payload: will.payload, qos: 1, retain: true },
  };
  if (s.username) o.username = s.username;
  if (s.passwordFile) {
    const pw = readFile(s.passwordFile, 'sync.passwordFile')
      .toString('utf8')
      .replace(/\r?\n$/, '');
    if (pw === '') throw new LangbiangError('CONFIG_INVALID', `sync.passwordFile: ${s.passwordFile} is empty`);
    o.password = pw;
  }
  if (s.tls?.ca) o.ca = readFile(s.tls.ca, 'sync.tls.ca');
  if (s.tls?.cert) o.cert = readFile(s.tls.cert, 'sync.tls.cert');
  if (s.tls?.key) o.key = readFile(s.tls.key, 'sync.tls.key');
  if (/^(mqtts|wss):/.test(s.url)) o.rejectUnauthorized = true;
  return o;
}
