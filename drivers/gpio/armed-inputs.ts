import type { GpioBackend, WatchedInput } from './backend.js';
import type { Level } from './bounce-filter.js';

/** One pin a device watches and what each of its edges goes to. */
export interface InputWiring {
  pin: number;
  onEdge: (level: Level, t: number) => void;
}

/**
 * The GPIO inputs of one device (a loop detector, a weather meter, a car park), armed together and
 * closed together: when one pin cannot be watched, those already armed are released before the
 * error goes on, so a device that failed to start holds no pin.
 */
export class ArmedInputs {
  private constructor(private inputs: WatchedInput[]) {}

  static async arm(backend: GpioBackend, wiring: readonly InputWiring[], activeLow: boolean): Promise<ArmedInputs> {
    const armed = new ArmedInputs([]);
    try {
      for (const w of wiring)
        armed.inputs.push(await backend.watch(w.pin, (e) => w.onEdge(e.level, e.t), { activeLow }));
    } catch (err) {
      await armed.close();
      throw err;
    }
    return armed;
  }

  async close(): Promise<void> {
    const inputs = this.inputs;
    this.inputs = [];
    await Promise.allSettled(inputs.map((i) => i.close()));
  }
}
