/**
 * The Node-RED child. Forked by the supervisor (flows/host/supervisor.ts); it waits for the
 * `init` message, starts Node-RED on 127.0.0.1, answers heartbeats, and bridges the langbiang
 * nodes to the gateway over IPC. It exits when the gateway goes away: a runtime without its
 * gateway has nothing to do and must not hold the port.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { FlowsBridge } from './bridge.js';
import type { FromChild, RunnerInit, ToChild } from './protocol.js';
import { nodeRedSettings } from './settings.js';

const require = createRequire(import.meta.url);
const FLOWS_START_WAIT_MS = 30_000;

function send(msg: FromChild): void {
  if (process.connected) process.send?.(msg);
}

function writeLog(line: string): void {
  process.stdout.write(line);
}

const bridge = new FlowsBridge(send);
let started = false;

process.on('message', (msg: ToChild) => {
  switch (msg.t) {
    case 'ping':
      send({ t: 'pong', n: msg.n, rss: process.memoryUsage.rss(), heapUsed: process.memoryUsage().heapUsed });
      break;
    case 'init':
      if (started) return;
      started = true;
      start(msg).catch((err) => {
        send({ t: 'fatal', msg: err instanceof Error ? err.message : String(err) });
        writeLog(
          `${JSON.stringify({ level: 'fatal', msg: `node-red did not start: ${String(err?.message ?? err)}` })}\n`,
        );
        process.exit(3);
      });
      break;
    default:
      bridge.handle(msg);
  }
});

process.on('disconnect', () => process.exit(0));
// Ctrl-C in a terminal reaches the whole process group; the gateway decides when this child stops.
process.on('SIGINT', () => {});

async function start(init: RunnerInit): Promise<void> {
  mkdirSync(init.userDir, { recursive: true, mode: 0o700 });
  const flowPath = join(init.userDir, init.flowFile);
  // first start: deploy the shipped default flows; afterwards the technician's flows are the truth
  if (!existsSync(flowPath) && existsSync(init.defaultFlowsFile)) {
    mkdirSync(dirname(flowPath), { recursive: true });
    copyFileSync(init.defaultFlowsFile, flowPath);
  }

  const express = require('express');
  const RED = require('node-red');
  const app = express();
  app.disable('x-powered-by');
  const server = createServer(app);
  const settings = nodeRedSettings(init, bridge, writeLog);
  RED.init(server, settings);
  app.use(init.httpAdminRoot, RED.httpAdmin);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(init.port, init.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // 'ready' means the flows run (their nodes have subscribed), not just that the editor is up
  const flowsStarted = new Promise<void>((resolve) => {
    RED.events.once('flows:started', () => resolve());
    setTimeout(resolve, FLOWS_START_WAIT_MS).unref();
  });
  await RED.start();
  await flowsStarted;
  stopRed = async () => {
    await RED.stop();
    server.close();
  };
  send({ t: 'ready', port: (server.address() as AddressInfo).port });
}

let stopRed: (() => Promise<void>) | null = null;

// The supervisor asks politely first (nodes close their connections, context is flushed), then kills.
process.on('SIGTERM', () => {
  const done = () => process.exit(0);
  setTimeout(done, 3000).unref();
  (stopRed ? stopRed() : Promise.resolve()).then(done, done);
});
