export { type Agg, type Downsampled, downsample, stepFor } from './downsample.js';
export { HISTORY_FILE, History, type HistoryQuery, type HistorySeries } from './rollup.js';
