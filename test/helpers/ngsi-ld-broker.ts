/**
 * A strict stand-in for an NGSI-LD context broker's batch upsert (ETSI GS CIM 009,
 * `POST /ngsi-ld/v1/entityOperations/upsert`): it refuses what the API refuses — another path or
 * method, a body that is not JSON-LD or JSON with a context Link, entities without id, type or
 * @context, attributes that are not a Property / Relationship / GeoProperty of the right shape —
 * and keeps the entities it took (merged, as `options=update` does). It can be stopped and
 * started again on the same port, like a broker restarted.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NgsiLdEntity } from '../../cloud-sync/receiver/ngsi-ld/entities.js';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  status: number;
}

export interface NgsiLdBroker {
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** tenant ('' = default) → entity id → entity (normalized, merged) */
  tenants: Map<string, Map<string, NgsiLdEntity>>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** entities this returns true for are refused in a 207 answer, as a broker refuses bad content */
  refuse?: (e: NgsiLdEntity) => boolean;
  /** answer the next n upserts 503 (a broker overloaded or restarting) */
  failNext: number;
}

const PATH = '/ngsi-ld/v1/entityOperations/upsert';
const CONTEXT_REL = 'http://www.w3.org/ns/json-ld#context';
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function isUri(s: unknown): boolean {
  return typeof s === 'string' && /^[a-z][a-z0-9+.-]*:\S+$/i.test(s);
}

/** What is wrong with one entity, or undefined. */
export function entityProblem(e: unknown, jsonLd: boolean): string | undefined {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return 'an entity must be a JSON object';
  const o = e as Record<string, unknown>;
  if (!isUri(o.id)) return `entity id ${JSON.stringify(o.id)} is not a URI`;
  if (typeof o.type !== 'string' || !o.type) return `${o.id}: type is missing`;
  if (jsonLd && o['@context'] === undefined) return `${o.id}: application/ld+json needs @context in every entity`;
  if (!jsonLd && o['@context'] !== undefined) return `${o.id}: application/json must not carry @context (use Link)`;
  if (o['@context'] !== undefined) {
    const c = o['@context'];
    const list = Array.isArray(c) ? c : [c];
    if (list.length === 0 || !list.every(isUri)) return `${o.id}: @context must be URLs`;
  }
  for (const [k, v] of Object.entries(o)) {
    if (k === 'id' || k === 'type' || k === '@context') continue;
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(k)) return `${o.id}: bad attribute name ${k}`;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return `${o.id}.${k}: an attribute must be an object`;
    const a = v as Record<string, unknown>;
    if (a.observedAt !== undefined && !(typeof a.observedAt === 'string' && ISO.test(a.observedAt)))
      return `${o.id}.${k}: observedAt must be an ISO 8601 UTC time`;
    if (a.unitCode !== undefined && typeof a.unitCode !== 'string') return `${o.id}.${k}: unitCode must be a string`;
    switch (a.type) {
      case 'Property':
        if (!('value' in a) || a.value === null) return `${o.id}.${k}: a Property needs a non-null value`;
        break;
      case 'Relationship': {
        const objs = Array.isArray(a.object) ? a.object : [a.object];
        if (objs.length === 0 || !objs.every(isUri)) return `${o.id}.${k}: a Relationship needs object URI(s)`;
        break;
      }
      case 'GeoProperty': {
        const g = a.value as { type?: unknown; coordinates?: unknown } | undefined;
        if (!g || typeof g.type !== 'string' || !Array.isArray(g.coordinates))
          return `${o.id}.${k}: a GeoProperty needs a GeoJSON value`;
        if (g.type === 'Point' && !(g.coordinates.length === 2 && g.coordinates.every((n) => typeof n === 'number')))
          return `${o.id}.${k}: a Point has two numbers`;
        break;
      }
      default:
        return `${o.id}.${k}: unknown attribute type ${JSON.stringify(a.type)}`;
    }
  }
  return undefined;
}

function problem(res: ServerResponse, status: number, type: string, title: string, detail: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ type: `https://uri.etsi.org/ngsi-ld/errors/${type}`, title, detail }));
}

export async function startNgsiLdBroker(): Promise<NgsiLdBroker> {
  const requests: RecordedRequest[] = [];
  const tenants = new Map<string, Map<string, NgsiLdEntity>>();
  let server: Server | undefined;
  let port = 0;

  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const rec: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body,
      status: 0,
    };
    requests.push(rec);
    const answer = (status: number, type: string, title: string, detail: string) => {
      rec.status = status;
      problem(res, status, type, title, detail);
    };
    if (url.pathname !== PATH) return answer(404, 'ResourceNotFound', 'Not Found', url.pathname);
    if (req.method !== 'POST') return answer(405, 'InvalidRequest', 'Method Not Allowed', req.method ?? '');
    const opt = url.searchParams.get('options');
    if (opt !== null && opt !== 'update' && opt !== 'replace') return answer(400, 'BadRequestData', 'Bad options', opt);
    const ctype = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    const jsonLd = ctype === 'application/ld+json';
    if (!jsonLd && ctype !== 'application/json')
      return answer(415, 'InvalidRequest', 'Unsupported Media Type', ctype || '(none)');
    if (!jsonLd) {
      const link = req.headers.link ?? '';
      if (!link.includes(`rel="${CONTEXT_REL}"`))
        return answer(400, 'BadRequestData', 'Missing context', 'application/json needs a Link header to a context');
    }
    let doc: unknown;
    try {
      doc = JSON.parse(body);
    } catch {
      return answer(400, 'InvalidRequest', 'Invalid JSON', 'the body is not JSON');
    }
    if (!Array.isArray(doc) || doc.length === 0)
      return answer(400, 'BadRequestData', 'Bad batch', 'the body must be a non-empty array of entities');
    for (const e of doc) {
      const p = entityProblem(e, jsonLd);
      if (p) return answer(400, 'BadRequestData', 'Invalid entity', p);
    }
    if (broker.failNext > 0) {
      broker.failNext--;
      return answer(503, 'InternalError', 'Service Unavailable', 'try again later');
    }
    const refused = (doc as NgsiLdEntity[]).filter((e) => broker.refuse?.(e));
    const tenant = (req.headers['ngsild-tenant'] as string | undefined) ?? '';
    let store = tenants.get(tenant);
    if (!store) {
      store = new Map();
      tenants.set(tenant, store);
    }
    let created = false;
    for (const e of doc as NgsiLdEntity[]) {
      if (refused.includes(e)) continue;
      const prev = store.get(e.id);
      if (!prev) created = true;
      store.set(e.id, opt === 'replace' || !prev ? e : { ...prev, ...e });
    }
    if (refused.length) {
      rec.status = 207;
      res.writeHead(207, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          success: (doc as NgsiLdEntity[]).filter((e) => !refused.includes(e)).map((e) => e.id),
          errors: refused.map((e) => ({
            entityId: e.id,
            error: { type: 'https://uri.etsi.org/ngsi-ld/errors/BadRequestData', title: 'refused by the test' },
          })),
        }),
      );
      return;
    }
    rec.status = created ? 201 : 204;
    if (created) {
      res.writeHead(201, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify((doc as NgsiLdEntity[]).map((e) => e.id)));
    } else {
      res.writeHead(204);
      res.end();
    }
  };

  const start = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as AddressInfo).port;
        server = s;
        resolve();
      });
    });
  await start();
  const broker: NgsiLdBroker = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    requests,
    tenants,
    start,
    stop: () =>
      new Promise<void>((resolve) => {
        const s = server;
        server = undefined;
        if (!s) return resolve();
        s.close(() => resolve());
        s.closeAllConnections();
      }),
    failNext: 0,
  };
  return broker;
}
