export type { EdgeEvent, GpioBackend, OutputPin, WatchedInput } from './backend.js';
export { BounceFilter, type Level, type LevelChange } from './bounce-filter.js';
export { GpioBus, type GpioBusOptions } from './bus.js';
export { DEFAULT_SYSFS_ROOT, type GpioChipInfo, listGpioChips, resolveGpioChip, sysfsNumber } from './chip.js';
export { LoopDetector, loopDetectorSettings } from './loop-detector.js';
export { SimulatedGpioBackend, type SimulatedTrafficOptions } from './simulated-backend.js';
export { type TrafficInterval, TrafficMeter } from './traffic-meter.js';
