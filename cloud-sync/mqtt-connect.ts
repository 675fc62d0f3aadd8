import { createRequire } from 'node:module';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { IClientOptions, MqttClient } from 'mqtt';

/** What `mqtt.connect` is to its callers: a broker URL and options in, a client that connects out. */
export type MqttConnect = (url: string, options: IClientOptions) => MqttClient;

type ClientClass = new (streamBuilder: (client: MqttClient) => Duplex, options: IClientOptions) => MqttClient;

const require = createRequire(import.meta.url);

/**
 * Whether a client for this broker URL is built here rather than by mqtt.connect: plain TCP or
 * TLS, no credentials or query in the URL (mqtt.connect parses those), no SOCKS proxy asked for
 * by the environment (MQTTJS_SOCKS_PROXY, which mqtt.connect honours).
 */
export function connectsDirectly(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol !== 'mqtt:' && u.protocol !== 'mqtts:') return false;
  if (u.username || u.password || u.search || u.hostname === '') return false;
  return !process.env.MQTTJS_SOCKS_PROXY;
}

/**
 * `mqtt.connect` for a gateway link to `url`, without loading what it never uses. mqtt.connect
 * loads every transport at its first call — the WebSocket library, the SOCKS client and its IP
 * address parser, TLS — ~3 MB of RSS (~1.2 MB of it heap: module sources and bytecode) kept for
 * the life of a gateway that speaks plain MQTT. For mqtt:// and mqtts:// the client is built on a
 * socket of our own, as mqtt.js's TCP and TLS builders make it; ws://, wss:// and anything
 * unusual go through mqtt.connect, loaded only then.
 */
export async function loadMqttConnect(url: string): Promise<MqttConnect> {
  if (!connectsDirectly(url)) {
    const mqtt = await import('mqtt');
    return (mqtt.connect ?? (mqtt as unknown as { default: { connect: MqttConnect } }).default.connect) as MqttConnect;
  }
  const mod = (await import('mqtt/lib/client')) as unknown as { default: ClientClass | { default: ClientClass } };
  const Client = ('default' in mod.default ? mod.default.default : mod.default) as ClientClass;
  return (brokerUrl, options) => {
    const u = new URL(brokerUrl);
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    // as mqtt.connect: a client certificate on mqtt:// means TLS
    const tls = u.protocol === 'mqtts:' || Boolean(options.cert && options.key);
    const port = u.port ? Number(u.port) : tls ? 8883 : 1883;
    const opts: IClientOptions = { ...options, protocol: tls ? 'mqtts' : 'mqtt', host, hostname: host, port };
    return new Client(
      (client) => (tls ? tlsStream(client, host, port, opts) : net.createConnection({ host, port })),
      opts,
    );
  };
}

/**
 * A TLS socket to the broker, checked as mqtt.js's own TLS builder checks it: the broker's name is
 * the SNI server name unless it is an IP address, an unauthorized peer is an error, and a TLS error
 * before the handshake completes reaches the client (which then closes and is reconnected).
 */
function tlsStream(client: MqttClient, host: string, port: number, opts: IClientOptions): Duplex {
  // loaded at the first TLS connection only: node:tls is not otherwise needed by the gateway
  const tls = require('node:tls') as typeof import('node:tls');
  const rejectUnauthorized = opts.rejectUnauthorized !== false;
  const socket = tls.connect({
    host,
    port,
    ca: opts.ca,
    cert: opts.cert,
    key: opts.key,
    rejectUnauthorized,
    ...(net.isIP(host) === 0 ? { servername: host } : {}),
  } as import('node:tls').ConnectionOptions);
  const onError = (err: Error) => {
    if (rejectUnauthorized) client.emit('error', err);
    socket.end();
  };
  socket.on('secureConnect', () => {
    if (rejectUnauthorized && !socket.authorized) socket.emit('error', new Error('TLS not authorized'));
    else socket.removeListener('error', onError);
  });
  socket.on('error', onError);
  return socket;
}
