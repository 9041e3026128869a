/**
 * Registry authentication as docker and skopeo do it: the `WWW-Authenticate` challenge of
 * `GET /v2/` (or of any 401) decides between Basic (credentials sent directly) and Bearer
 * (a token from the challenge's realm, fetched anonymously or with Basic credentials, cached
 * per scope until it expires or the registry refuses it).
 */
import { FetchError, redactUrl, request, type FetchOptions } from '../fetch/index.js';
import { DEFAULT_CREDENTIALS_HINT, type Credentials } from './credentials.js';
import type { Readable } from 'node:stream';
import { RegistryError, describeErrorBody } from './errors.js';

export interface Challenge {
  /** Lower case: `bearer`, `basic`. */
  scheme: string;
  /** Parameter names in lower case. */
  params: Record<string, string>;
}

const TOKEN_CHARS = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

/**
 * Parses a WWW-Authenticate value (RFC 7235), which may hold several challenges — repeated
 * headers arrive joined with ", " — and quoted strings containing commas.
 */
export function parseWwwAuthenticate(value: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = value.length;
  const skipWs = (): void => {
    while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && TOKEN_CHARS.test(value[i]!)) i++;
    return value.slice(start, i);
  };
  const quoted = (): string => {
    let s = '';
    i++; // opening quote
    while (i < n && value[i] !== '"') {
      if (value[i] === '\\' && i + 1 < n) i++;
      s += value[i];
      i++;
    }
    i++; // closing quote
    return s;
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipWs();
    if (value[i] === ',') {
      i++;
      continue;
    }
    const start = i;
    const name = token();
    if (name === '') {
      i++; // garbage: skip a character rather than loop forever
      continue;
    }
    skipWs();
    if (value[i] === '=' && current !== undefined) {
      // An auth-param of the current challenge (token68 values are not used by registries).
      i++;
      skipWs();
      const v = value[i] === '"' ? quoted() : token();
      current.params[name.toLowerCase()] = v;
      continue;
    }
    if (value[i] === '=') {
      // A parameter with no challenge before it: malformed, ignore it.
      i = start + name.length + 1;
      if (value[i] === '"') quoted();
      else token();
      continue;
    }
    current = { scheme: name.toLowerCase(), params: {} };
    out.push(current);
  }
  return out;
}

interface CachedToken {
  value: string;
  /** ms since epoch after which we ask for a new one. */
  renewAt: number;
}

/** Docker treats shorter lifetimes as 60 s (minimumTokenLifetimeSeconds). */
const MIN_TOKEN_LIFETIME_S = 60;

export interface AuthenticatorOptions {
  /** Registry name for messages (`127.0.0.1:5000`, `docker.io`). */
  registry: string;
  /** Looked up lazily, once, the first time a challenge needs them. */
  credentials: () => Promise<Credentials | undefined>;
  fetch: FetchOptions;
  /** Clock, for tests of token expiry (default Date.now). */
  now?: () => number;
  /** How a user gives credentials, for the error when none were found. */
  credentialsHint?: string;
}

export class Authenticator {
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  private creds: Promise<Credentials | undefined> | undefined;
  private readonly now: () => number;
  /** Extra scopes a registry asked for (insufficient_scope), merged into the scope's request. */
  private readonly extraScopes = new Map<string, string>();

  constructor(private readonly opts: AuthenticatorOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Records the challenges of a ping or a 401; Bearer is preferred over Basic. */
  setChallenges(header: string | undefined): void {
    if (header === undefined || header.trim() === '') return;
    const all = parseWwwAuthenticate(header);
    const pick = all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic');
    if (!pick) {
      const schemes = all.map((c) => c.scheme).join(', ') || '(unparseable)';
      throw new RegistryError(`registry ${this.opts.registry} asks for unsupported authentication: ${schemes}`, 'UNAUTHORIZED');
    }
    this.challenge = pick;
  }

  get scheme(): string | undefined {
    return this.challenge?.scheme;
  }

  private credentials(): Promise<Credentials | undefined> {
    this.creds ??= this.opts.credentials();
    return this.creds;
  }

  /** Whether we authenticated with credentials (for error messages: where they came from). */
  async credentialSource(): Promise<string | undefined> {
    return this.challenge ? (await this.credentials())?.source : undefined;
  }

  /** The Authorization header value for `scope`, or undefined when none is needed. */
  async authorize(scope: string): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    const creds = await this.credentials();
    if (creds?.registryToken !== undefined) return `Bearer ${creds.registryToken}`;
    if (ch.scheme === 'basic') {
      if (!creds || (creds.username === '' && creds.password === '')) {
        throw new RegistryError(
          `registry ${this.opts.registry} requires authentication (Basic) and no credentials were found (${this.opts.credentialsHint ?? DEFAULT_CREDENTIALS_HINT})`,
          'UNAUTHORIZED',
        );
      }
      return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    }
    const key = this.cacheKey(ch, scope);
    const cached = this.tokens.get(key);
    if (cached && this.now() < cached.renewAt) return `Bearer ${cached.value}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchToken(ch, this.scopesFor(scope), creds).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    const t = await p;
    this.tokens.set(key, t);
    return `Bearer ${t.value}`;
  }

  /**
   * After a 401: takes the new challenge (which may ask for more scope) and forgets the token
   * used for `scope`. Returns whether one more attempt can succeed: yes for a Bearer token we
   * fetched (expired or revoked), or when no credentials were sent yet; no otherwise.
   */
  async unauthorized(scope: string, wwwAuthenticate: string | undefined, sent: string | undefined): Promise<boolean> {
    const before = this.challenge;
    if (before) this.tokens.delete(this.cacheKey(before, scope));
    this.setChallenges(wwwAuthenticate);
    const ch = this.challenge;
    if (!ch) return false;
    if (sent === undefined) return true;
    if (ch.scheme !== 'bearer') return false;
    const wanted = ch.params.scope;
    if (wanted && ch.params.error === 'insufficient_scope' && wanted !== scope) this.extraScopes.set(scope, wanted);
    this.tokens.delete(this.cacheKey(ch, scope));
    return (await this.credentials())?.registryToken === undefined;
  }

  private scopesFor(scope: string): string[] {
    const extra = this.extraScopes.get(scope);
    return extra && extra !== scope ? [scope, extra] : [scope];
  }

  private cacheKey(ch: Challenge, scope: string): string {
    return JSON.stringify([ch.params.realm ?? '', ch.params.service ?? '', this.scopesFor(scope)]);
  }

  /**
   * The token server is another origin than the registry: the curl flags' credentials (meant
   * for the registry) stay away from it; it gets the registry's credentials as Basic only.
   */
  private tokenFetch(): FetchOptions {
    return { ...this.opts.fetch, credentialsFor: null };
  }

  private async fetchToken(ch: Challenge, scopes: string[], creds: Credentials | undefined): Promise<CachedToken> {
    const realm = ch.params.realm;
    if (!realm) throw new RegistryError(`registry ${this.opts.registry}: Bearer challenge without a realm`, 'TOKEN');
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError(`registry ${this.opts.registry}: invalid token realm '${redactUrl(realm)}'`, 'TOKEN');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new RegistryError(`registry ${this.opts.registry}: token realm must be http(s), got '${redactUrl(realm)}'`, 'TOKEN');
    }
    const service = ch.params.service;
    const started = this.now();
    let status: number;
    let body: Buffer;
    const shown = redactUrl(url);
    try {
      if (creds?.identityToken !== undefined) {
        // docker's OAuth2 refresh-token grant; the form carries the secret, never the URL.
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'fetch-image', access_type: 'offline' });
        if (service) form.set('service', service);
        form.set('scope', scopes.join(' '));
        const r = await request(url.href, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form.toString() }, this.tokenFetch());
        status = r.status;
        body = await readCapped(r.body, 1 << 20, `token from ${shown}`);
      } else {
        if (service) url.searchParams.set('service', service);
        for (const s of scopes) url.searchParams.append('scope', s);
        const headers: Record<string, string> = {};
        if (creds && (creds.username !== '' || creds.password !== '')) {
          url.searchParams.set('account', creds.username);
          headers.Authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
        }
        const r = await request(url.href, { headers }, this.tokenFetch());
        status = r.status;
        body = await readCapped(r.body, 1 << 20, `token from ${shown}`);
      }
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryError(`token request to ${shown} failed: ${err instanceof FetchError ? err.message : String(err)}`, 'TOKEN', { cause: err });
    }
    if (status === 401 || status === 403) {
      const who = creds ? `the credentials from ${creds.source} were refused` : 'anonymous access was refused';
      const said = describeErrorBody(body).text;
      throw new RegistryError(`token server ${shown} answered HTTP ${status}: ${who}${said ? ` (${said})` : ''}`, 'UNAUTHORIZED', { status });
    }
    if (status !== 200) {
      const said = describeErrorBody(body).text;
      throw new RegistryError(`token server ${shown} answered HTTP ${status}${said ? `: ${said}` : ''}`, 'TOKEN', { status });
    }
    const { value, lifetimeS } = parseTokenAnswer(body, shown);
    // Counted from our own clock (issued_at may come from a skewed one), and renewed a little
    // early so that a token does not expire between our check and the registry's.
    const margin = Math.min(10_000, (lifetimeS * 1000) / 10);
    return { value, renewAt: started + lifetimeS * 1000 - margin };
  }
}

/**
 * The token and its lifetime from a token server's 200 answer (`token` or `access_token`,
 * `expires_in` in seconds, at least {@link MIN_TOKEN_LIFETIME_S}). `shown` names the server.
 */
export function parseTokenAnswer(body: Buffer, shown: string): { value: string; lifetimeS: number } {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new RegistryError(`token server ${shown} answered with invalid JSON`, 'TOKEN');
  }
  const { token, access_token: accessToken, expires_in: expiresIn } = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
  const value = typeof token === 'string' && token !== '' ? token : typeof accessToken === 'string' && accessToken !== '' ? accessToken : undefined;
  if (value === undefined) throw new RegistryError(`token server ${shown} answered without a token`, 'TOKEN');
  const lifetimeS = typeof expiresIn === 'number' && expiresIn >= MIN_TOKEN_LIFETIME_S ? expiresIn : MIN_TOKEN_LIFETIME_S;
  return { value, lifetimeS };
}

/** Reads a small body completely, refusing more than `limit` bytes. */
export async function readCapped(body: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > limit) throw new RegistryError(`${what}: larger than the ${limit}-byte limit`, 'TOO_LARGE');
      chunks.push(c);
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks);
}

