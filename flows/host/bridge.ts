import { randomUUID } from 'node:crypto';
import type { CommandResult } from '../../gateway/core/command.js';
import type { GatewayEventRecord } from '../../gateway/core/outbox.js';
import type { StoredReading } from '../../gateway/core/reading.js';
import type { FlowCommand, FromChild, HistoryQuery, ToChild } from './protocol.js';

export interface ReadingFilter {
  /** device ids; empty or missing = every device */
  devices?: string[];
  /** point names; empty or missing = every point */
  points?: string[];
}

type ReadingListener = { filter: ReadingFilter; fn: (readings: StoredReading[]) => void };
type EventListener = (event: GatewayEventRecord) => void;

const REQUEST_TIMEOUT_MS = 30_000;

/**
 * What the langbiang nodes see of the gateway (RED.settings.langbiang). It lives in the Node-RED
 * child and speaks IPC to the supervisor; the nodes never see the channel itself.
 */
export class FlowsBridge {
  private readonly readingListeners = new Set<ReadingListener>();
  private readonly eventListeners = new Set<EventListener>();
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  private nextId = 1;
  private subscribeQueued = false;

  constructor(private readonly send: (msg: FromChild) => void) {}

  /** Readings of the chosen devices/points, in the batches the store commits. Returns an unsubscribe. */
  onReadings(filter: ReadingFilter, fn: (readings: StoredReading[]) => void): () => void {
    const l: ReadingListener = { filter, fn };
    this.readingListeners.add(l);
    this.queueSubscribe();
    return () => {
      this.readingListeners.delete(l);
      this.queueSubscribe();
    };
  }

  /** Gateway events (gap, alarm, command, flows…) as the store records them. */
  onEvent(fn: EventListener): () => void {
    this.eventListeners.add(fn);
    this.queueSubscribe();
    return () => {
      this.eventListeners.delete(fn);
      this.queueSubscribe();
    };
  }

  /** A command through the gateway's command router (source 'flows'). Resolves with its result. */
  command(cmd: FlowCommand): Promise<CommandResult> {
    const command = { ...cmd, id: cmd.id ?? `flows-${randomUUID()}` };
    return this.request((id) => ({ t: 'command', id, command })) as Promise<CommandResult>;
  }

  /** Stored readings over a range (oldest first unless order 'desc'). */
  history(query: HistoryQuery): Promise<StoredReading[]> {
    return this.request((id) => ({ t: 'history', id, query })) as Promise<StoredReading[]>;
  }

  /** Messages from the supervisor. */
  handle(msg: ToChild): void {
    switch (msg.t) {
      case 'readings':
        for (const l of this.readingListeners) {
          const matching = msg.readings.filter((r) => matches(l.filter, r));
          if (matching.length) safely(() => l.fn(matching));
        }
        break;
      case 'events':
        for (const e of msg.events) for (const fn of this.eventListeners) safely(() => fn(e));
        break;
      case 'reply': {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(new Error(msg.error));
        break;
      }
    }
  }

  private request(make: (id: number) => FromChild): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('the gateway did not answer within 30 s'));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.send(make(id));
    });
  }

  /** Tell the gateway which devices to forward, once per tick however many nodes (re)subscribe. */
  private queueSubscribe(): void {
    if (this.subscribeQueued) return;
    this.subscribeQueued = true;
    setImmediate(() => {
      this.subscribeQueued = false;
      let all = false;
      const devices = new Set<string>();
      for (const l of this.readingListeners) {
        if (!l.filter.devices?.length) all = true;
        else for (const d of l.filter.devices) devices.add(d);
      }
      this.send({
        t: 'subscribe',
        devices: all ? null : [...devices],
        events: this.eventListeners.size > 0,
      });
    });
  }
}

function matches(f: ReadingFilter, r: StoredReading): boolean {
  if (f.devices?.length && !f.devices.includes(r.device)) return false;
  if (f.points?.length && !f.points.includes(r.point)) return false;
  return true;
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // a node's handler failing is that node's problem; the others still get their readings
  }
}
