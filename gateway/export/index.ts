export { EVENT_COLUMNS, type EventExportRow, formatEvents } from './events.js';
export { EXPORT_COLUMNS, type ExportFormat, type ExportRow, isoTime, writeExport } from './export.js';
