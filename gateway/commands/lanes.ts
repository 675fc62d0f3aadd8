/**
 * One queue per device: a command's write and its read-back run together, and two commands to
 * one lamp cabinet never interleave. The bus driver already serialises single requests per bus;
 * this orders whole commands per device on top of it.
 */
export class DeviceLanes {
  private readonly tails = new Map<string, { tail: Promise<unknown>; waiting: number }>();

  constructor(private readonly maxWaiting: number) {}

  /** Runs fn after the device's earlier commands; undefined (not run) when the lane is full. */
  run<T>(device: string, fn: () => Promise<T>): Promise<T> | undefined {
    const lane = this.tails.get(device) ?? { tail: Promise.resolve(), waiting: 0 };
    if (lane.waiting >= this.maxWaiting) return undefined;
    lane.waiting++;
    const result = lane.tail.then(fn);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    lane.tail = settled;
    this.tails.set(device, lane);
    void settled.then(() => {
      lane.waiting--;
      if (lane.waiting === 0 && this.tails.get(device) === lane) this.tails.delete(device);
    });
    return result;
  }

  waiting(device: string): number {
    return this.tails.get(device)?.waiting ?? 0;
  }
}
