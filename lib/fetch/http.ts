/**
 * One logical HTTP exchange: the request, the redirects (followed here, not by undici, so that
 * credentials never leave their origin), and the bookkeeping shared by request() and the
 * resumable download: the operation's deadline/abort and the retry decision.
 */
import { STATUS_CODES } from 'node:http';
import type { Readable } from 'node:stream';
import { loadUndici } from './undici.js';
import { dispatcherFor } from './dispatchers.js';
import { AttemptError, FetchError, classifyError, redactUrl } from './errors.js';
import { netrcLookup } from './netrc.js';
import type { Resolved } from './options.js';
import { selectProxy } from './proxy-env.js';
import { MAX_RETRY_AFTER_MS, retryDelayMs } from './retry.js';
import { NETWORK_ERRNO_TEXT } from './errors.js';
import type { RetryNotice } from './options.js';

/** Headers that carry credentials: sent only to the origin they belong to. */
const SENSITIVE = new Set(['authorization', 'cookie']);
/** For the proxy alone (the dispatcher sends it); never to a server. */
const PROXY_ONLY = 'proxy-authorization';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

const USER_AGENT = 'fetch-image';

export interface Exchange {
  status: number;
  statusText: string;
  headers: Record<string, string>;
  /** The URL that answered (after redirects), without credentials. */
  url: URL;
  body: Readable & { dump(opts?: { limit: number }): Promise<void> };
}

export function statusText(status: number): string {
  return STATUS_CODES[status] ?? 'Unknown Status';
}

export interface Target {
  /** The URL without userinfo. */
  url: URL;
  /** Basic credentials from the URL's userinfo, as a header. */
  auth: [string, string] | undefined;
}

/** Parses the caller's URL; userinfo becomes a Basic Authorization header. */
export function parseTarget(text: string, what: string): Target {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new FetchError(what, text, 'invalid URL', { kind: 'config' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new FetchError(what, url, `unsupported URL scheme '${url.protocol}' (http and https only)`, { kind: 'config' });
  }
  let auth: [string, string] | undefined;
  if (url.username || url.password) {
    const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    auth = ['Authorization', `Basic ${Buffer.from(user).toString('base64')}`];
    url.username = '';
    url.password = '';
  }
  return { url, auth };
}

/** Headers and the one origin that may receive the credentials among them (null: none). */
export interface HeaderGroup {
  headers: ReadonlyArray<readonly [string, string]>;
  origin: string | null;
}

/**
 * The headers of one request, in order (later wins): the URL's userinfo, the curl flags' (or
 * the netrc file's credentials when nothing else gives any), then the caller's own. The caller's
 * go to `trustedOrigin`; the curl flags' and netrc's to `credentialsFor` when set, else there too.
 */
export function requestHeaders(target: Target, res: Resolved, call: ReadonlyArray<readonly [string, string]>, trustedOrigin: string): HeaderGroup[] {
  const curlOrigin = res.credentialsFor === undefined ? trustedOrigin : res.credentialsFor;
  const curl: Array<readonly [string, string]> = [...res.headers];
  const given = target.auth !== undefined || [...curl, ...res.callHeaders, ...call].some(([k]) => k.toLowerCase() === 'authorization');
  if (!given && res.netrc && curlOrigin !== null) {
    const entry = netrcLookup(res.netrc, new URL(curlOrigin).hostname);
    if (entry) curl.push(['Authorization', `Basic ${Buffer.from(`${entry.login}:${entry.password}`).toString('base64')}`]);
  }
  return [
    { headers: target.auth ? [target.auth] : [], origin: trustedOrigin },
    { headers: curl, origin: curlOrigin },
    { headers: [...res.callHeaders, ...call], origin: trustedOrigin },
  ];
}

/** Case-insensitive merge (later wins), dropping each group's credentials unless `url` is on its origin. */
export function headersFor(url: URL, groups: readonly HeaderGroup[]): Record<string, string> {
  const merged = new Map<string, [string, string]>();
  merged.set('user-agent', ['User-Agent', USER_AGENT]);
  for (const group of groups) {
    const trusted = group.origin !== null && url.origin === group.origin;
    for (const [k, v] of group.headers) {
      const lower = k.toLowerCase();
      if (lower === PROXY_ONLY || (SENSITIVE.has(lower) && !trusted)) continue;
      merged.set(lower, [k, v]);
    }
  }
  return Object.fromEntries(merged.values());
}

function flattenHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/**
 * The deadline and abort signal of a whole operation (all attempts). Errors seen after it
 * fired are reported as the timeout/abort, not as whatever socket error it caused.
 */
export class Operation {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly unlink: (() => void) | undefined;
  private readonly totalMs: number | undefined;
  private why: 'timeout' | 'aborted' | undefined;

  constructor(res: Resolved) {
    this.totalMs = res.totalTimeoutMs;
    if (res.totalTimeoutMs !== undefined) {
      this.timer = setTimeout(() => this.stop('timeout'), res.totalTimeoutMs);
      this.timer.unref();
    }
    const user = res.signal;
    if (user) {
      if (user.aborted) {
        this.stop('aborted');
      } else {
        const onAbort = (): void => this.stop('aborted');
        user.addEventListener('abort', onAbort, { once: true });
        this.unlink = () => user.removeEventListener('abort', onAbort);
      }
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  private stop(why: 'timeout' | 'aborted'): void {
    if (this.why) return;
    this.why = why;
    this.controller.abort(new Error(why));
  }

  /** What went wrong with an attempt, taking the operation's own state into account. */
  classify(err: unknown): AttemptError {
    if (this.why === 'timeout') {
      return new AttemptError(`timed out after ${(this.totalMs ?? 0) / 1000} s (total time limit)`, { kind: 'timeout', transient: false, cause: err });
    }
    if (this.why === 'aborted') return new AttemptError('aborted', { kind: 'aborted', transient: false, cause: err });
    return classifyError(err);
  }

  /** Waits `ms` unless the operation is stopped first (then rejects). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.signal.aborted) {
        reject(this.signal.reason);
        return;
      }
      const onAbort = (): void => {
        clearTimeout(t);
        reject(this.signal.reason);
      };
      const t = setTimeout(() => {
        this.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      this.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.unlink?.();
  }
}

/**
 * Retry bookkeeping for one operation: `failed()` either waits the backoff (and returns) or
 * throws the error as a FetchError.
 */
export class RetryBudget {
  failures = 0;
  private readonly started = Date.now();

  constructor(
    private readonly res: Resolved,
    private readonly op: Operation,
    private readonly toError: (a: AttemptError, retried: number) => FetchError,
    /** Names the operation in retry notices: `GET https://…`. */
    private readonly what = '',
  ) {}

  async failed(err: unknown, opts: { allowRetry?: boolean } = {}): Promise<void> {
    const a = this.op.classify(err);
    const retryAfter = a.retryAfterMs;
    if (!a.transient || opts.allowRetry === false || this.failures >= this.res.retries) throw this.toError(a, this.failures);
    if (retryAfter !== undefined && retryAfter > MAX_RETRY_AFTER_MS) {
      throw this.toError(new AttemptError(`${a.message}; server asks to retry after ${Math.round(retryAfter / 1000)} s`, { kind: a.kind, transient: false }), this.failures);
    }
    this.failures++;
    const delayMs = retryDelayMs(this.failures, this.res.retryBaseMs, retryAfter);
    // Quick recoveries stay silent; a wait a person would notice is explained as it starts.
    if (this.res.onRetry && Date.now() - this.started + delayMs > 1000) {
      this.res.onRetry({ what: this.what, retry: this.failures, retries: this.res.retries, delayMs, reason: briefReason(a) });
    }
    try {
      await this.op.sleep(delayMs);
    } catch (e) {
      throw this.toError(this.op.classify(e), this.failures);
    }
  }
}

/** `GET https://…: retrying in 2 s (connection refused; retry 1 of 5)`. */
export function formatRetryNotice(n: RetryNotice): string {
  const s = n.delayMs < 950 ? (n.delayMs / 1000).toFixed(1) : String(Math.round(n.delayMs / 1000));
  return `${n.what}: retrying in ${s} s (${n.reason}; retry ${n.retry} of ${n.retries})`;
}

/** A few words for why an attempt failed: `connection refused`, `HTTP 503`, `connect timeout`. */
export function briefReason(a: AttemptError): string {
  if (a.status !== undefined) return `HTTP ${a.status}`;
  const code = (a.cause as { code?: unknown } | undefined)?.code;
  const known = typeof code === 'string' ? NETWORK_ERRNO_TEXT[code] : undefined;
  return known ?? a.message.split(' (')[0]!.slice(0, 80);
}

/** Turns an attempt's failure into the one-line error callers see. */
export function fetchError(what: string, url: string | URL, a: AttemptError, retried: number): FetchError {
  const suffix = retried > 0 ? ` (after ${retried} ${retried === 1 ? 'retry' : 'retries'})` : '';
  const init: { kind: typeof a.kind; transient: boolean; cause: unknown; status?: number } = { kind: a.kind, transient: a.transient, cause: a };
  if (a.status !== undefined) init.status = a.status;
  return new FetchError(what, url, `${a.message}${suffix}`, init);
}

export interface SendInit {
  method: string;
  /** See requestHeaders(). */
  headers: readonly HeaderGroup[];
  body: string | Buffer | undefined;
}

/** Sends the request and follows redirects (at most res.maxRedirects). Throws AttemptError-able errors. */
export async function sendFollowing(start: URL, init: SendInit, res: Resolved, op: Operation): Promise<Exchange> {
  let url = start;
  let method = init.method;
  let body = init.body;
  let headers = init.headers;
  for (let hops = 0; ; hops++) {
    const proxy = selectProxy(url, res.env, res.proxy);
    const dispatcher = await dispatcherFor({ proxy, ca: res.ca, insecure: res.insecure, connectTimeoutMs: res.connectTimeoutMs, proxyAuthorization: res.proxyAuthorization });
    const { request: undiciRequest } = await loadUndici();
    let r: Awaited<ReturnType<Awaited<ReturnType<typeof loadUndici>>['request']>>;
    try {
      r = await undiciRequest(url, {
        dispatcher,
        method,
        headers: headersFor(url, headers),
        body: body ?? null,
        signal: op.signal,
        headersTimeout: res.stallTimeoutMs,
        bodyTimeout: res.stallTimeoutMs,
      });
    } catch (err) {
      if (!proxy) throw err;
      // Say which proxy was involved: "ECONNREFUSED 127.0.0.1:3128" alone is puzzling.
      const a = classifyError(err);
      const init: ConstructorParameters<typeof AttemptError>[1] = { kind: a.kind, transient: a.transient, cause: err };
      throw new AttemptError(`${a.message} (via ${proxy.kind} proxy ${redactUrl(proxy.href)})`, init);
    }
    const flat = flattenHeaders(r.headers);
    const location = flat.location;
    if (!REDIRECTS.has(r.statusCode) || location === undefined) {
      return { status: r.statusCode, statusText: statusText(r.statusCode), headers: flat, url, body: r.body };
    }
    await r.body.dump().catch(() => undefined);
    if (hops >= res.maxRedirects) {
      throw new AttemptError(`too many redirects (more than ${res.maxRedirects})`, { kind: 'protocol', transient: false });
    }
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw new AttemptError(`HTTP ${r.statusCode} redirect to an invalid location`, { kind: 'protocol', transient: false });
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new AttemptError(`redirect to unsupported scheme '${next.protocol}'`, { kind: 'protocol', transient: false });
    }
    // Credentials in a Location header are never used.
    next.username = '';
    next.password = '';
    if (r.statusCode === 303 ? method !== 'HEAD' : (r.statusCode === 301 || r.statusCode === 302) && method === 'POST') {
      method = 'GET';
      body = undefined;
      headers = headers.map((g) => ({ ...g, headers: g.headers.filter(([k]) => !/^content-(type|length|encoding)$/i.test(k)) }));
    }
    url = next;
  }
}
