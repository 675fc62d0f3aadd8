export { ModbusBus, type ModbusBusDeps, type ModbusRtuOptions, type ModbusTcpOptions } from './bus.js';
export { type BackoffPolicy, DEFAULT_BACKOFF } from './health.js';
export { RequestQueue, rtuInterFrameDelayMs } from './queue.js';
export { DEFAULT_SCAN_PROBE, type ScanHit, type ScanOptions, type ScanProbe, scanUnits } from './scan.js';
