import { describeError, LangbiangError } from '../../../gateway/core/errors.js';
import type { NgsiLdEntity } from './entities.js';

export interface NgsiLdClientOptions {
  /** the context broker's base URL, e.g. http://orion-ld:1026 (a trailing /ngsi-ld/v1 is accepted) */
  url: string;
  /** NGSILD-Tenant header */
  tenant?: string;
  /** sent as `Authorization: Bearer …` (e.g. a token of the PEP proxy in front of the broker) */
  token?: string;
  /** per request, ms (default 15000) */
  timeoutMs?: number;
}

/** An entity the broker refused (HTTP 207 partial success, or 400 for the whole batch). */
export interface RejectedEntity {
  id: string;
  reason: string;
}

/**
 * The context broker is unreachable or answered in a way a retry may fix (5xx, 429, network,
 * timeout, or a 401/403/404/405/415 that needs the operator): nothing is lost, the caller retries.
 */
export class NgsiLdUnavailable extends LangbiangError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NGSI_LD_UNAVAILABLE', message, undefined, options);
  }
}

/**
 * NGSI-LD batch upsert (`POST /ngsi-ld/v1/entityOperations/upsert?options=update`): each entity
 * carries its `@context`, so the body is `application/ld+json`. `options=update` merges the
 * attributes we send into the entity and leaves the ones the city added (an address, a
 * description) alone.
 */
export class NgsiLdClient {
  readonly endpoint: string;

  constructor(private readonly o: NgsiLdClientOptions) {
    let base: URL;
    try {
      base = new URL(o.url);
    } catch {
      throw new LangbiangError('USAGE', `--ngsi-ld ${JSON.stringify(o.url)} is not a URL (e.g. http://orion-ld:1026)`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:')
      throw new LangbiangError('USAGE', `--ngsi-ld must be an http:// or https:// URL, not ${base.protocol}`);
    if (base.username || base.password)
      throw new LangbiangError('USAGE', 'do not put credentials in --ngsi-ld; use --ngsi-ld-token-file');
    const path = base.pathname.replace(/\/+$/, '').replace(/\/ngsi-ld\/v1$/, '');
    this.endpoint = `${base.origin}${path}/ngsi-ld/v1/entityOperations/upsert?options=update`;
  }

  /** Sends one batch; resolves with the entities refused for their content, throws NgsiLdUnavailable to retry. */
  async upsert(entities: readonly NgsiLdEntity[], abort?: AbortSignal): Promise<RejectedEntity[]> {
    if (entities.length === 0) return [];
    const headers: Record<string, string> = {
      'Content-Type': 'application/ld+json',
      Accept: 'application/json',
    };
    if (this.o.tenant) headers['NGSILD-Tenant'] = this.o.tenant;
    if (this.o.token) headers.Authorization = `Bearer ${this.o.token}`;
    // one signal for the timeout and the caller's stop (AbortSignal.any needs Node 20.3)
    const ctl = new AbortController();
    const timeoutMs = this.o.timeoutMs ?? 15_000;
    const timer = setTimeout(() => ctl.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const onAbort = () => ctl.abort(new Error('stopping'));
    if (abort?.aborted) onAbort();
    abort?.addEventListener('abort', onAbort, { once: true });
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.endpoint, { method: 'POST', headers, body: JSON.stringify(entities), signal: ctl.signal });
      text = await res.text();
    } catch (err) {
      throw new NgsiLdUnavailable(`context broker unreachable: ${describeError(ctl.signal.reason ?? err)}`, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
      abort?.removeEventListener('abort', onAbort);
    }
    if (res.status === 201 || res.status === 204 || res.status === 200) return [];
    if (res.status === 207) return partialErrors(text, entities);
    if (res.status === 400) {
      // the broker refused the whole batch for its content: retrying the same bytes cannot help
      const reason = problemText(text) ?? 'bad request';
      return entities.map((e) => ({ id: e.id, reason }));
    }
    throw new NgsiLdUnavailable(
      `context broker answered ${res.status}${problemText(text) ? `: ${problemText(text)}` : ''}`,
    );
  }
}

function problemText(body: string): string | undefined {
  try {
    const p = JSON.parse(body) as { title?: string; detail?: string; type?: string };
    return [p.title, p.detail].filter(Boolean).join(': ') || p.type;
  } catch {
    return body.trim().slice(0, 200) || undefined;
  }
}

/** 207: `{ success: [ids], errors: [{ entityId, error: { title, detail } }] }` */
function partialErrors(body: string, sent: readonly NgsiLdEntity[]): RejectedEntity[] {
  try {
    const r = JSON.parse(body) as {
      errors?: { entityId?: string; error?: { title?: string; detail?: string; type?: string } }[];
    };
    return (r.errors ?? []).map((e) => ({
      id: e.entityId ?? '?',
      reason: [e.error?.title, e.error?.detail].filter(Boolean).join(': ') || e.error?.type || 'refused',
    }));
  } catch {
    return sent.map((e) => ({ id: e.id, reason: 'partial success with an unreadable answer' }));
  }
}
