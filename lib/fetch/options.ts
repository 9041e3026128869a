/** The caller's options, merged with curl flags and the environment into one resolved set. */
import { readFileSync } from 'node:fs';
import { mergeCurlSettings, parseCurlFlags, type CurlSettings } from './curl-flags.js';
import { readNetrc, type NetrcEntry } from './netrc.js';
import type { ProxyOverride } from './proxy-env.js';

export interface FetchOptions {
  /** Where proxy variables, NIX_CURL_FLAGS, NIX_CONNECT_TIMEOUT, NIX_SSL_CERT_FILE and SSL_CERT_FILE are read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Extra curl-style flags (like pull.nix's `curlOpts`), applied after NIX_CURL_FLAGS. */
  curlOpts?: string;
  /** Request headers. Authorization and Cookie are sent to the original origin only. */
  headers?: Record<string, string>;
  /**
   * The origin that credentials from curl flags (`-u`, `-H` Authorization/Cookie) and the netrc
   * file may go to: by default the origin of the URL being fetched; null for none (a request
   * made on the way to something else: a foreign layer URL, a token server, a binary cache).
   */
  credentialsFor?: string | null;
  /** A netrc file (curl --netrc-file): Basic credentials for that origin's host when no others were given. */
  netrcFile?: string;
  /** Redirects followed per request (default 20). */
  maxRedirects?: number;
  /** Retries after transient failures (default 5, like curl's --retry N). */
  retries?: number;
  /** Base of the exponential backoff between retries (default 1000 ms). */
  retryBaseMs?: number;
  /** Connection timeout (default NIX_CONNECT_TIMEOUT seconds, else 15 s). */
  connectTimeoutMs?: number;
  /** Give up an attempt when no byte arrives for this long (default 300 s, Nix's stalled-download-timeout). */
  stallTimeoutMs?: number;
  /** Give up the whole operation, retries included, after this long (default: no limit). */
  totalTimeoutMs?: number;
  /** Skip TLS certificate verification (curl -k). */
  insecure?: boolean;
  /** PEM CA bundle to trust instead of the system roots (curl --cacert). */
  caFile?: string;
  signal?: AbortSignal;
  onProgress?: (received: number, total: number | undefined) => void;
  /** Told before each wait for a retry once the operation has taken (or will have taken) more than a second. */
  onRetry?: (notice: RetryNotice) => void;
}

/** One retry about to happen, for a line like `GET URL: retrying in 2 s (connection refused)`. */
export interface RetryNotice {
  /** What is being fetched, e.g. `GET https://…` or `download of https://…` (redacted). */
  what: string;
  /** This retry's number (1-based) and how many are allowed. */
  retry: number;
  retries: number;
  delayMs: number;
  /** Why the last attempt failed, in a few words. */
  reason: string;
}

export interface Resolved {
  env: NodeJS.ProcessEnv;
  /** Headers from curl flags (-H, -u), in their given case; credentials among them go to `credentialsFor` only. */
  headers: Array<[string, string]>;
  /** The caller's own headers (`headers` option). */
  callHeaders: Array<[string, string]>;
  credentialsFor: string | null | undefined;
  netrc: NetrcEntry[] | undefined;
  /** A Proxy-Authorization value from -H, for the proxy (never sent to a server). */
  proxyAuthorization: string | undefined;
  maxRedirects: number;
  retries: number;
  retryBaseMs: number;
  connectTimeoutMs: number;
  stallTimeoutMs: number;
  totalTimeoutMs: number | undefined;
  insecure: boolean;
  caFile: string | undefined;
  ca: string | undefined;
  proxy: ProxyOverride;
  signal: AbortSignal | undefined;
  onProgress: ((received: number, total: number | undefined) => void) | undefined;
  onRetry: ((notice: RetryNotice) => void) | undefined;
}

export const DEFAULTS = {
  maxRedirects: 20,
  retries: 5,
  retryBaseMs: 1000,
  connectTimeoutMs: 15_000,
  stallTimeoutMs: 300_000,
} as const;

function nonNegative(name: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isFinite(v) || v < 0) throw new Error(`fetch option ${name} must be a non-negative number, got ${v}`);
  return v;
}

function connectTimeoutFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const raw = env.NIX_CONNECT_TIMEOUT;
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+(\.\d+)?$/.test(raw)) throw new Error(`invalid NIX_CONNECT_TIMEOUT '${raw}': expected seconds`);
  return Math.round(Number(raw) * 1000);
}

/** Merges options (highest priority), curlOpts, NIX_CURL_FLAGS and the other env variables. */
export function resolveOptions(opts: FetchOptions = {}): Resolved {
  const env = opts.env ?? process.env;
  const fromEnv = env.NIX_CURL_FLAGS ? parseCurlFlags(env.NIX_CURL_FLAGS, 'NIX_CURL_FLAGS') : { headers: [] };
  const fromOpts = opts.curlOpts ? parseCurlFlags(opts.curlOpts, 'curlOpts') : { headers: [] };
  const curl: CurlSettings = mergeCurlSettings(fromEnv, fromOpts);

  const isProxyAuth = ([k]: readonly [string, string]): boolean => k.toLowerCase() === 'proxy-authorization';
  const headers: Array<[string, string]> = curl.headers.filter((h) => !isProxyAuth(h));
  if (curl.user !== undefined) headers.push(['Authorization', `Basic ${Buffer.from(curl.user).toString('base64')}`]);
  const proxyAuthorization = curl.headers.filter(isProxyAuth).pop()?.[1];
  const callHeaders = Object.entries(opts.headers ?? {}).filter((h) => !isProxyAuth(h));

  const caFile = opts.caFile ?? curl.caFile ?? (env.NIX_SSL_CERT_FILE || undefined) ?? (env.SSL_CERT_FILE || undefined);
  let ca: string | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (err) {
      throw new Error(`cannot read CA bundle '${caFile}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }

  const proxy: ProxyOverride = {};
  if (curl.proxy !== undefined) proxy.proxy = curl.proxy;
  if (curl.noProxy !== undefined) proxy.noProxy = curl.noProxy;
  if (curl.proxyUser !== undefined) proxy.proxyUser = curl.proxyUser;

  const total = nonNegative('totalTimeoutMs', opts.totalTimeoutMs) ?? curl.maxTimeMs;
  return {
    env,
    headers,
    callHeaders,
    credentialsFor: opts.credentialsFor,
    netrc: opts.netrcFile === undefined ? undefined : readNetrc(opts.netrcFile),
    proxyAuthorization,
    maxRedirects: nonNegative('maxRedirects', opts.maxRedirects) ?? DEFAULTS.maxRedirects,
    retries: nonNegative('retries', opts.retries) ?? curl.retries ?? DEFAULTS.retries,
    retryBaseMs: nonNegative('retryBaseMs', opts.retryBaseMs) ?? DEFAULTS.retryBaseMs,
    connectTimeoutMs: nonNegative('connectTimeoutMs', opts.connectTimeoutMs) ?? curl.connectTimeoutMs ?? connectTimeoutFromEnv(env) ?? DEFAULTS.connectTimeoutMs,
    stallTimeoutMs: nonNegative('stallTimeoutMs', opts.stallTimeoutMs) ?? DEFAULTS.stallTimeoutMs,
    totalTimeoutMs: total === 0 ? undefined : total,
    insecure: opts.insecure ?? curl.insecure ?? false,
    caFile,
    ca,
    proxy,
    signal: opts.signal,
    onProgress: opts.onProgress,
    onRetry: opts.onRetry,
  };
}

/** The `user:password` of `-u` in NIX_CURL_FLAGS or curlOpts (the last one), if any. */
export function curlUserOf(opts: Pick<FetchOptions, 'env' | 'curlOpts'>): string | undefined {
  const env = opts.env ?? process.env;
  const fromEnv = env.NIX_CURL_FLAGS ? parseCurlFlags(env.NIX_CURL_FLAGS, 'NIX_CURL_FLAGS') : { headers: [] };
  const fromOpts = opts.curlOpts ? parseCurlFlags(opts.curlOpts, 'curlOpts') : { headers: [] };
  return mergeCurlSettings(fromEnv, fromOpts).user;
}
