/**
 * A v1 pull's conversation with the index, the registry and wherever layers redirect to:
 * which credentials go to which origin, session cookies, redirects, retries.
 *
 * pull.sh let curl send `Authorization: Token` along every redirect (curl -H sticks to all
 * hops); here credentials are tied to origins instead:
 * - the index origin gets Basic user:pass (when given) — that is where Docker's v1 login went;
 * - the registry origin (first X-Docker-Endpoints entry) gets `Token <token>` once the index
 *   issued one (Basic, if the registry is the index itself and no token was issued);
 * - any other origin (layer storage) gets neither.
 * Cookies are kept per origin (scheme, host and port: stricter than a browser, so a storage
 * host on the same name never sees the registry's session) and sent back only there.
 */
import type { V1Http, V1HttpResponse } from './http.js';
import { discardBody, headerValue, headerValues, showUrl } from './http.js';

export interface V1Credentials {
  username: string;
  password: string;
}

export interface V1SessionOptions {
  http: V1Http;
  indexUrl: URL;
  credentials?: V1Credentials;
  /** Retries after a network error or a 408/429/5xx answer (pull.sh: curl --retry 3). */
  retries: number;
  retryBaseMs: number;
  maxRedirects: number;
  signal?: AbortSignal;
  onRetry?: (what: string, attempt: number, reason: string) => void;
}

export class V1RegistryError extends Error {
  constructor(message: string, readonly kind: 'auth' | 'not-found' | 'protocol' | 'http' | 'network', readonly status?: number) {
    super(message);
    this.name = 'V1RegistryError';
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const TRANSIENT = new Set([408, 429, 500, 502, 503, 504]);

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class V1Session {
  /** The index's X-Docker-Token, if it issued one. Never printed. */
  token: string | undefined;
  /** Origin of the registry endpoint, once known. */
  registryOrigin: string | undefined;
  private readonly indexOrigin: string;
  private readonly cookies = new Map<string, Map<string, string>>();

  constructor(private readonly opts: V1SessionOptions) {
    this.indexOrigin = opts.indexUrl.origin;
  }

  get signal(): AbortSignal | undefined {
    return this.opts.signal;
  }

  private authorization(origin: string): string | undefined {
    const basic = this.opts.credentials &&
      `Basic ${Buffer.from(`${this.opts.credentials.username}:${this.opts.credentials.password}`).toString('base64')}`;
    if (origin === this.registryOrigin && this.token !== undefined) return `Token ${this.token}`;
    if (origin === this.indexOrigin) return basic;
    return undefined;
  }

  private rememberCookies(origin: string, res: V1HttpResponse): void {
    for (const line of headerValues(res, 'set-cookie')) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let jar = this.cookies.get(origin);
      if (!jar) this.cookies.set(origin, (jar = new Map()));
      const expired = attrs.some((a) => {
        const [k = '', v = ''] = a.split('=').map((x) => x.trim());
        if (k.toLowerCase() === 'max-age') return Number(v) <= 0;
        if (k.toLowerCase() === 'expires') return Date.parse(v) < Date.now();
        return false;
      });
      if (expired) jar.delete(name);
      else jar.set(name, value);
    }
  }

  private cookieHeader(origin: string): string | undefined {
    const jar = this.cookies.get(origin);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** One request, following redirects, with the credentials and cookies each hop may see. */
  private async follow(start: URL, headers: Record<string, string>, what: string): Promise<{ res: V1HttpResponse; url: URL }> {
    let url = start;
    for (let hop = 0; ; hop++) {
      const h: Record<string, string> = { ...headers };
      const auth = this.authorization(url.origin);
      if (auth !== undefined) h.Authorization = auth;
      const cookie = this.cookieHeader(url.origin);
      if (cookie !== undefined) h.Cookie = cookie;
      const res = await this.opts.http({ url, headers: h, signal: this.opts.signal });
      const at = res.url ?? url;
      this.rememberCookies(at.origin, res);
      if (!REDIRECTS.has(res.status)) return { res, url: at };
      discardBody(res.body);
      const location = headerValue(res, 'location');
      if (!location) throw new V1RegistryError(`${what}: ${showUrl(url)} answered ${res.status} without a Location`, 'protocol', res.status);
      if (hop >= this.opts.maxRedirects) throw new V1RegistryError(`${what}: more than ${this.opts.maxRedirects} redirects from ${showUrl(start)}`, 'protocol');
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new V1RegistryError(`${what}: ${showUrl(url)} redirected to an invalid URL`, 'protocol');
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new V1RegistryError(`${what}: ${showUrl(url)} redirected to unsupported scheme '${next.protocol}'`, 'protocol');
      }
      url = next;
    }
  }

  /**
   * GET with redirects and retries. Transient failures (network errors, 408/429/5xx) are tried
   * again; any other answer is returned for the caller to judge, its body still unread.
   */
  async get(url: URL, what: string, headers: Record<string, string> = {}): Promise<{ res: V1HttpResponse; url: URL }> {
    for (let attempt = 0; ; attempt++) {
      let reason: string;
      try {
        const r = await this.follow(url, headers, what);
        if (!TRANSIENT.has(r.res.status) || attempt >= this.opts.retries) return r;
        discardBody(r.res.body);
        reason = `HTTP ${r.res.status}`;
      } catch (err) {
        if (err instanceof V1RegistryError || this.opts.signal?.aborted) throw err;
        reason = err instanceof Error ? err.message : String(err);
        if (attempt >= this.opts.retries) {
          throw new V1RegistryError(`${what}: ${showUrl(url)}: ${reason} (after ${attempt + 1} attempts)`, 'network');
        }
      }
      this.opts.onRetry?.(what, attempt + 1, reason);
      await sleep(this.opts.retryBaseMs * 2 ** attempt, this.opts.signal);
    }
  }
}
