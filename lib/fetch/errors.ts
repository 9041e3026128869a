/** Errors of the download layer, and redaction of credentials from anything we print. */

/** Query parameters whose values are secrets (signed-URL signatures, tokens). */
const SECRET_QUERY = /sig|token|secret|password|passwd|credential|auth|key/i;

/**
 * A URL fit for messages: userinfo is replaced by `***` and secret-looking query values are
 * masked. Text that does not parse as a URL is returned with any `user:pass@` masked.
 */
export function redactUrl(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    return String(url).replace(/\/\/[^/@\s]*@/, '//***@');
  }
  if (u.username || u.password) {
    u.username = '***';
    u.password = '';
  }
  for (const key of [...u.searchParams.keys()]) {
    if (SECRET_QUERY.test(key)) u.searchParams.set(key, '***');
  }
  return u.href;
}

/** Masks credentials that may appear inside free text (header values, embedded URLs). */
export function redactText(text: string): string {
  return text
    .replace(/\b(authorization|proxy-authorization|cookie)(\s*[:=]\s*)[^\r\n,;]+/gi, '$1$2***')
    .replace(/\b(Basic|Bearer)\s+[A-Za-z0-9._~+/=-]{8,}/g, '$1 ***')
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1***@');
}

export type FetchErrorKind =
  | 'http'       // the server answered with an error status
  | 'network'    // connection refused/reset, broken body, DNS
  | 'timeout'    // connect, stall or total timeout
  | 'protocol'   // the server broke HTTP rules we rely on (lengths, ranges, redirects)
  | 'aborted'    // the caller's signal
  | 'config';    // bad options, proxy settings, CA file

/** One-line error naming the (redacted) URL and what went wrong. */
export class FetchError extends Error {
  readonly url: string;
  readonly kind: FetchErrorKind;
  readonly status: number | undefined;
  /** Whether trying again might help (used by the retry loop). */
  readonly transient: boolean;

  constructor(
    what: string,
    url: string | URL,
    detail: string,
    init: { kind: FetchErrorKind; status?: number; transient?: boolean; cause?: unknown },
  ) {
    const shown = redactUrl(url);
    super(`${what} ${shown} failed: ${redactText(detail).replace(/\s*\n\s*/g, ' ')}`, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'FetchError';
    this.url = shown;
    this.kind = init.kind;
    this.status = init.status;
    this.transient = init.transient ?? false;
  }
}

/**
 * An internal failure of one attempt; the retry loop decides whether it becomes a FetchError.
 * `retryAfterMs` carries a server's Retry-After.
 */
export class AttemptError extends Error {
  readonly kind: FetchErrorKind;
  readonly transient: boolean;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, init: { kind: FetchErrorKind; transient: boolean; status?: number; retryAfterMs?: number; cause?: unknown }) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'AttemptError';
    this.kind = init.kind;
    this.transient = init.transient;
    this.status = init.status;
    this.retryAfterMs = init.retryAfterMs;
  }
}

/** Socket-level error codes worth another try. TLS and DNS-not-found errors are not. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENETDOWN', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  // A SOCKS proxy refusing or failing to reach the target (set by our SOCKS connector).
  'ESOCKS',
]);

/** Socket errors in words: Node's `connect ECONNREFUSED 127.0.0.1:1` alone tells a newcomer little. */
export const NETWORK_ERRNO_TEXT: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused', ECONNRESET: 'connection reset', ECONNABORTED: 'connection aborted', EPIPE: 'connection closed',
  ETIMEDOUT: 'connection timed out', EHOSTUNREACH: 'host unreachable', ENETUNREACH: 'network unreachable', ENETDOWN: 'network down',
  EAI_AGAIN: 'DNS lookup failed', ENOTFOUND: 'host not found', UND_ERR_SOCKET: 'connection closed', UND_ERR_CLOSED: 'connection closed',
};

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Classifies an error thrown by undici, node:net/tls or the SOCKS client for one attempt. */
export function classifyError(err: unknown): AttemptError {
  if (err instanceof AttemptError) return err;
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new AttemptError('connect timeout', { kind: 'timeout', transient: true, cause: err });
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new AttemptError('stalled: no data received within the stall timeout', { kind: 'timeout', transient: true, cause: err });
  }
  const raw = code === undefined || code === 'ESOCKS' || message.includes(code) ? message : `${message} (${code})`;
  const words = code === undefined ? undefined : NETWORK_ERRNO_TEXT[code];
  const text = words ? `${words} (${raw})` : raw;
  return new AttemptError(text, { kind: 'network', transient: code !== undefined && TRANSIENT_CODES.has(code), cause: err });
}
