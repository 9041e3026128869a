/**
 * One registry as sync talks to it: the API endpoint (https first; plain http only with
 * tls-verify off, as skopeo), authentication for any scope (push scopes, and several
 * repositories at once for cross-repository mounts) and authenticated requests. The pull-only
 * RegistryClient keeps its authenticator to itself with a fixed pull scope, so the push side
 * has its own, built from the same parts (Authenticator, findCredentials, lib/fetch).
 */
import type { Readable } from 'node:stream';
import { FetchError, request, type FetchOptions, type HttpResponse } from '../fetch/index.js';
import {
  Authenticator, RegistryError, describeErrorBody, findCredentials, findEndpoint, onceUnlessFailed,
  type CredentialOptions, type Credentials, type ImageReference,
} from '../registry/index.js';
import { StreamTransport, type StreamResponse } from './stream.js';

export interface HostOptions extends CredentialOptions {
  /** false = skopeo --tls-verify=false: accept any certificate and allow the plain-http fallback. */
  tlsVerify?: boolean;
  /** PEM bundle to trust for the registry (and its token server). */
  caFile?: string;
  /** Credentials already found; undefined = look them up, null = anonymous. */
  credentials?: Credentials | null;
  fetch?: FetchOptions;
}

export type Action = 'pull' | 'pull,push';

/** The token scope for `actions` on a repository path. */
export function repoScope(path: string, actions: Action): string {
  return `repository:${path}:${actions}`;
}

/**
 * With tls-verify off no certificate is checked, so the CA bundles the environment names
 * (SSL_CERT_FILE, NIX_SSL_CERT_FILE) would only be parsed for nothing on every TLS attempt,
 * tens of milliseconds each for a full system bundle. Everything else in the env is kept.
 */
export function skipUnusedCaBundles(opts: HostOptions): HostOptions {
  if (opts.tlsVerify !== false || opts.caFile !== undefined) return opts;
  const env: NodeJS.ProcessEnv = { ...(opts.env ?? opts.fetch?.env ?? process.env) };
  delete env.SSL_CERT_FILE;
  delete env.NIX_SSL_CERT_FILE;
  return { ...opts, env, fetch: { ...opts.fetch, env } };
}

/** Reads a small answer body (for messages and manifests' digests), dropping the rest. */
export async function readBody(body: Readable, limit = 8192): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body as AsyncIterable<Buffer>) {
      if (n < limit) chunks.push(c);
      n += c.length;
    }
  } catch {
    // An error while reading an error body adds nothing useful.
  }
  return Buffer.concat(chunks).subarray(0, limit);
}

export class RegistryHost {
  readonly domain: string;
  private readonly apiHost: string;
  private readonly fetchOpts: FetchOptions;
  private readonly auth: Authenticator;
  private readonly base = onceUnlessFailed(() => this.ping());
  readonly stream: StreamTransport;

  constructor(ref: ImageReference, opts: HostOptions = {}) {
    this.domain = ref.domain;
    this.apiHost = ref.apiHost;
    const insecure = opts.tlsVerify === false || opts.fetch?.insecure === true;
    const env = opts.env ?? opts.fetch?.env;
    this.fetchOpts = { ...opts.fetch, ...(env ? { env } : {}), insecure, ...(opts.caFile !== undefined ? { caFile: opts.caFile } : {}) };
    const given = opts.credentials;
    this.auth = new Authenticator({
      registry: ref.domain,
      credentials: given === null ? async () => undefined : given !== undefined ? async () => given : () => findCredentials(ref, opts),
      fetch: this.fetchOpts,
      ...(opts.credentialsHint ? { credentialsHint: opts.credentialsHint } : {}),
    });
    this.stream = new StreamTransport(this.fetchOpts);
  }

  /** Fetch options of this registry (TLS settings applied), for a RegistryClient on the same host. */
  get fetchOptions(): FetchOptions {
    return this.fetchOpts;
  }

  /** `https://host` or `http://host` once the registry answered `GET /v2/`. */
  endpoint(): Promise<string> {
    return this.base();
  }

  private async ping(): Promise<string> {
    const { base, challenge } = await findEndpoint(this.domain, this.apiHost, this.fetchOpts);
    if (challenge !== undefined) this.auth.setChallenges(challenge);
    return base;
  }

  /** `${endpoint}/v2/<path>/<rest>`. */
  async url(path: string, rest: string): Promise<string> {
    return `${await this.endpoint()}/v2/${path}/${rest}`;
  }

  /** Whether credentials may go to `url`: only to the registry's own origin. */
  private async trusted(url: string | URL): Promise<boolean> {
    return new URL(url).origin === new URL(await this.endpoint()).origin;
  }

  /**
   * One authenticated request with a resendable body; after a 401 the token is renewed (or
   * the scope widened, for insufficient_scope) and the request sent once more.
   */
  async send(method: string, url: string, init: { headers?: Record<string, string>; body?: Buffer | string }, scope: string): Promise<HttpResponse> {
    const trusted = await this.trusted(url);
    for (let attempt = 0; ; attempt++) {
      const sent = trusted ? await this.auth.authorize(scope) : undefined;
      const res = await request(url, { method, headers: { ...init.headers, ...(sent ? { Authorization: sent } : {}) }, ...(init.body !== undefined ? { body: init.body } : {}) }, this.fetchOpts);
      if (res.status === 401 && trusted && attempt === 0 && await this.auth.unauthorized(scope, res.headers['www-authenticate'], sent)) {
        await readBody(res.body);
        continue;
      }
      return res;
    }
  }

  /**
   * An authenticated request with a streamed body (sent once: a stream cannot be replayed).
   * After a 401 the token is dropped, so that the caller's retry of the whole blob gets a new one.
   */
  async sendStream(method: string, url: URL, headers: Record<string, string>, body: Readable, length: number, scope: string): Promise<StreamResponse> {
    const trusted = await this.trusted(url);
    const sent = trusted ? await this.auth.authorize(scope) : undefined;
    const res = await this.stream.send(method, url, { ...headers, ...(sent ? { Authorization: sent } : {}) }, body, length);
    if (res.status === 401 && trusted) await this.auth.unauthorized(scope, res.headers['www-authenticate'], sent).catch(() => false);
    return res;
  }

  /** The one-line error for an unexpected answer to `what`. */
  async statusError(what: string, status: number, body: Buffer): Promise<RegistryError> {
    const { text } = describeErrorBody(body);
    const said = text ? `: ${text}` : '';
    if (status === 401) {
      const source = await this.auth.credentialSource();
      const why = source ? `the registry refused the credentials from ${source}` : 'credentials are needed and none were found (use --src-creds/--dest-creds, docker login or an auth.json)';
      return new RegistryError(`${what}: HTTP 401 Unauthorized: ${why}${said}`, 'UNAUTHORIZED', { status });
    }
    if (status === 403) return new RegistryError(`${what}: HTTP 403 Forbidden: access denied${said}`, 'DENIED', { status });
    if (status === 404) return new RegistryError(`${what}: not found (HTTP 404${said})`, 'NOT_FOUND', { status });
    return new RegistryError(`${what}: HTTP ${status}${said}`, 'HTTP', { status });
  }

  /** Wraps transport failures of `what` as one-line RegistryErrors (keeping their cause). */
  wrap(what: string, err: unknown): Error {
    if (err instanceof RegistryError) return err;
    if (err instanceof FetchError) return new RegistryError(`${what}: ${err.message}`, 'HTTP', { ...(err.status !== undefined ? { status: err.status } : {}), cause: err });
    return err instanceof Error ? err : new Error(String(err));
  }

  async close(): Promise<void> {
    await this.stream.close();
  }
}
