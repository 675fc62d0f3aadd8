export { type Agg, type Downsampled, downsample, stepFor } from './downsample.js';
export { History, HISTORY_FILE, type HistoryQuery, type HistorySeries } from './rollup.js';
