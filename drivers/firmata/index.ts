export { FirmataConnection, type FirmataConnectOptions } from './board.js';
export { FirmataBus, type FirmataBusOptions } from './bus.js';
