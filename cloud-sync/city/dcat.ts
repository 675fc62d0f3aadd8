import type { GatewaySites } from './open-data.js';
import { datasetFields, selects } from './open-data.js';
import type { OpenDataConfig, OpenDataset } from './open-data-config.js';
import { FREQUENCIES } from './open-data-config.js';

/**
 * The DCAT-AP catalog of the open-data directory, as JSON-LD: what a CKAN portal with
 * ckanext-dcat (its JSON-LD / RDF harvester) reads. One dcat:Dataset per configured dataset, one
 * dcat:Distribution per day and format. Controlled vocabularies are the EU publications office's
 * authority lists (data themes, frequencies, file types) and IANA media types, as DCAT-AP asks.
 */

const EU = 'http://publications.europa.eu/resource/authority';

export const DCAT_CONTEXT = {
  dcat: 'http://www.w3.org/ns/dcat#',
  dct: 'http://purl.org/dc/terms/',
  foaf: 'http://xmlns.com/foaf/0.1/',
  vcard: 'http://www.w3.org/2006/vcard/ns#',
  xsd: 'http://www.w3.org/2001/XMLSchema#',
  locn: 'http://www.w3.org/ns/locn#',
  gsp: 'http://www.opengis.net/ont/geosparql#',
} as const;

type Node = Record<string, unknown>;

const iri = (id: string) => ({ '@id': id });
const lit = (value: string, type: string) => ({ '@value': value, '@type': type });

export function buildCatalog(
  cfg: OpenDataConfig,
  daysOf: (datasetId: string) => string[],
  sites: GatewaySites | undefined,
  now = new Date(),
): Node {
  const base = cfg.catalog.baseUrl.replace(/\/?$/, '/');
  const lang = cfg.catalog.language;
  const text = (s: string) => ({ '@value': s, '@language': lang });
  const publisher: Node = {
    '@id': cfg.publisher.url ?? `${base}#publisher`,
    '@type': 'foaf:Agent',
    'foaf:name': cfg.publisher.name,
    ...(cfg.publisher.email ? { 'foaf:mbox': iri(`mailto:${cfg.publisher.email}`) } : {}),
  };
  const license = { '@id': cfg.license, '@type': 'dct:LicenseDocument' };
  const datasets = cfg.datasets.map((d) => dataset(d));

  function dataset(d: OpenDataset): Node {
    const days = daysOf(d.id);
    const bbox = cfg.bbox ?? sitesBbox(d, sites);
    const node: Node = {
      '@id': `${base}${d.id}`,
      '@type': 'dcat:Dataset',
      'dct:identifier': d.id,
      'dct:title': text(d.title),
      'dct:description': text(`${d.description} Columns: ${datasetFields(d).join(', ')}.`),
      'dcat:keyword': d.keywords.map(text),
      'dct:publisher': iri(publisher['@id'] as string),
      'dct:license': license,
      'dct:accrualPeriodicity': iri(`${EU}/frequency/${FREQUENCIES[cfg.updateFrequency]}`),
      'dcat:temporalResolution': lit(d.interval === 'hour' ? 'PT1H' : 'P1D', 'xsd:duration'),
      'dct:language': iri(`${EU}/language/${iso6392(lang)}`),
      'dct:modified': lit(now.toISOString(), 'xsd:dateTime'),
      'dcat:landingPage': iri(`${base}${d.id}/`),
      'dcat:distribution': days.flatMap((day) => [distribution(d, day, 'csv'), distribution(d, day, 'json')]),
    };
    if (d.theme) node['dcat:theme'] = iri(`${EU}/data-theme/${d.theme}`);
    if (days.length)
      node['dct:temporal'] = {
        '@type': 'dct:PeriodOfTime',
        'dcat:startDate': lit(days[0]!, 'xsd:date'),
        'dcat:endDate': lit(days[days.length - 1]!, 'xsd:date'),
      };
    if (bbox)
      node['dct:spatial'] = {
        '@type': 'dct:Location',
        'dcat:bbox': lit(wktPolygon(bbox), 'gsp:wktLiteral'),
      };
    return node;
  }

  function distribution(d: OpenDataset, day: string, format: 'csv' | 'json'): Node {
    const url = `${base}${d.id}/${day}.${format}`;
    return {
      '@id': url,
      '@type': 'dcat:Distribution',
      'dct:title': text(`${d.title} — ${day} (${format.toUpperCase()})`),
      'dcat:accessURL': iri(url),
      'dcat:downloadURL': iri(url),
      'dct:format': iri(`${EU}/file-type/${format.toUpperCase()}`),
      'dcat:mediaType': iri(
        `https://www.iana.org/assignments/media-types/${format === 'csv' ? 'text/csv' : 'application/json'}`,
      ),
      'dct:license': license,
      'dct:temporal': {
        '@type': 'dct:PeriodOfTime',
        'dcat:startDate': lit(day, 'xsd:date'),
        'dcat:endDate': lit(day, 'xsd:date'),
      },
    };
  }

  return {
    '@context': DCAT_CONTEXT,
    '@id': `${base}catalog.jsonld`,
    '@type': 'dcat:Catalog',
    'dct:title': text(cfg.catalog.title),
    'dct:description': text(cfg.catalog.description),
    'dct:publisher': publisher,
    'dct:license': license,
    'dct:language': iri(`${EU}/language/${iso6392(lang)}`),
    'dct:modified': lit(now.toISOString(), 'xsd:dateTime'),
    ...(cfg.catalog.homepage ? { 'foaf:homepage': iri(cfg.catalog.homepage) } : {}),
    'dcat:dataset': datasets,
  };
}

/** The gateways' locations (from their configs) that a dataset can take points from. */
function sitesBbox(d: OpenDataset, sites: GatewaySites | undefined): [number, number, number, number] | undefined {
  if (!sites) return undefined;
  const pts = [...sites.entries()]
    .filter(([gw, s]) =>
      [...s.profiles.keys()].some((device) =>
        d.points.some((point) => selects(d, { gateway: gw, device, point }, sites)),
      ),
    )
    .map(([, s]) => s.location);
  if (!pts.length) return undefined;
  return [
    Math.min(...pts.map((p) => p.lon)),
    Math.min(...pts.map((p) => p.lat)),
    Math.max(...pts.map((p) => p.lon)),
    Math.max(...pts.map((p) => p.lat)),
  ];
}

function wktPolygon([w, s, e, n]: [number, number, number, number]): string {
  return `POLYGON((${w} ${s}, ${e} ${s}, ${e} ${n}, ${w} ${n}, ${w} ${s}))`;
}

/** The EU language authority list uses ISO 639-2 codes. */
function iso6392(code: string): string {
  const known: Record<string, string> = { vi: 'VIE', en: 'ENG', fr: 'FRA', de: 'DEU', zh: 'ZHO', ja: 'JPN', ko: 'KOR' };
  return known[code] ?? code.toUpperCase();
}
