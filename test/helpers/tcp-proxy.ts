import net from 'node:net';

/**
 * A TCP proxy inside the test, between a client (the gateway) and a server (Mosquitto), to break
 * the link the way a cellular modem does: drop every connection at once (both sockets destroyed,
 * as a modem reset looks), or stall (bytes stop flowing both ways but nothing is closed, as a
 * dead radio link looks until keepalive notices), then resume.
 */
export interface TcpProxy {
  port: number;
  /** mqtt://127.0.0.1:port */
  url: string;
  /** destroy every open connection; new ones are still accepted */
  drop(): void;
  /** stop forwarding in both directions without closing; new connections are accepted and stall too */
  stall(): void;
  /** forward again (what was held back during a stall is delivered) */
  resume(): void;
  /** refuse new connections (they are closed at once) until accept(true) */
  accept(on: boolean): void;
  connections(): number;
  /** connections accepted since start */
  accepted(): number;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  server: net.Socket;
}

export async function startTcpProxy(target: { host?: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let stalled = false;
  let accepting = true;
  let acceptedCount = 0;

  const destroy = (p: Pair) => {
    pairs.delete(p);
    p.client.destroy();
    p.server.destroy();
  };

  const server = net.createServer((client) => {
    if (!accepting) {
      client.destroy();
      return;
    }
    acceptedCount++;
    const upstream = net.connect({ host: target.host ?? '127.0.0.1', port: target.port });
    const pair: Pair = { client, server: upstream };
    pairs.add(pair);
    // pause/resume instead of pipe(): a stall must hold bytes in the kernel buffers, not in ours
    const forward = (from: net.Socket, to: net.Socket) => {
      from.on('data', (d: Buffer) => {
        if (!to.write(d)) {
          from.pause();
          to.once('drain', () => {
            if (!stalled) from.resume();
          });
        }
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    if (stalled) {
      client.pause();
      upstream.pause();
    }
    const end = () => destroy(pair);
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;

  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    drop() {
      for (const p of [...pairs]) destroy(p);
    },
    stall() {
      stalled = true;
      for (const p of pairs) {
        p.client.pause();
        p.server.pause();
      }
    },
    resume() {
      stalled = false;
      for (const p of pairs) {
        p.client.resume();
        p.server.resume();
      }
    },
    accept(on) {
      accepting = on;
    },
    connections: () => pairs.size,
    accepted: () => acceptedCount,
    close() {
      for (const p of [...pairs]) destroy(p);
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
