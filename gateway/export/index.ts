export { EXPORT_COLUMNS, type ExportFormat, type ExportRow, isoTime, writeExport } from './export.js';
