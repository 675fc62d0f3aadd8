export * from './clock.js';
export * from './command.js';
export * from './driver.js';
export * from './errors.js';
export * from './events.js';
export * from './outbox.js';
export * from './point.js';
export * from './reading.js';
