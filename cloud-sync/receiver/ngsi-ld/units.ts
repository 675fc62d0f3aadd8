/**
 * UN/CEFACT Recommendation 20 common codes for the units our profiles use: NGSI-LD carries a
 * unit as `unitCode`, never as free text. Used for points a profile's `ngsiLd:` block does not
 * map (the generic DeviceMeasurement); a mapped point names its own code.
 */
const UNIT_CODES: Readonly<Record<string, string>> = {
  '°C': 'CEL',
  '%': 'P1',
  '%RH': 'P1',
  V: 'VLT',
  A: 'AMP',
  W: 'WTT',
  kW: 'KWT',
  VA: 'D46',
  kvar: 'KVR',
  Hz: 'HTZ',
  Wh: 'WHR',
  kWh: 'KWH',
  kvarh: 'K3',
  'km/h': 'KMH',
  'm/s': 'MTS',
  'mg/kg': 'NA',
  'µS/cm': 'G42',
  'S/m': 'D10',
  m: 'MTR',
  m3: 'MTQ',
  'm³': 'MTQ',
  L: 'LTR',
  'L/min': 'L2',
  'm3/h': 'MQH',
  mm: 'MMT',
  s: 'SEC',
  ms: 'C26',
  '°': 'DD',
  lx: 'LUX',
  hPa: 'A97',
  Pa: 'PAL',
  ppm: '59',
};

/** The UN/CEFACT code of a unit as a profile writes it, or undefined when we know none. */
export function unitCodeOf(unit: string | null | undefined): string | undefined {
  return unit ? UNIT_CODES[unit] : undefined;
}
