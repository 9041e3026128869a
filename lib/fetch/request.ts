/** A single request for API calls: redirects, retries, proxies, credentials handled. */
import { PassThrough, type Readable } from 'node:stream';
import { AttemptError, FetchError, redactUrl } from './errors.js';
import { Operation, RetryBudget, fetchError, parseTarget, requestHeaders, sendFollowing } from './http.js';
import { resolveOptions, type FetchOptions } from './options.js';
import { isRetryableStatus, parseRetryAfter } from './retry.js';

export interface RequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export interface HttpResponse {
  status: number;
  statusText: string;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The URL that answered, after redirects (without credentials). */
  url: string;
  /** Must be consumed or destroyed. Errors on it are one-line FetchErrors. */
  body: Readable;
}

/** Methods that may be sent again after a failure without changing what the server does. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/**
 * Sends one request. Redirects are followed (Authorization/Cookie only to the URL's origin, or
 * for curl flags' and netrc credentials to opts.credentialsFor);
 * connection errors and 408/429/5xx answers are retried for idempotent methods. Any final
 * status is returned (a 401 is an answer, not an error); after the last retry a 5xx is
 * returned too. Throws a FetchError for network failures, timeouts and protocol errors.
 */
export async function request(url: string, init: RequestInit = {}, opts: FetchOptions = {}): Promise<HttpResponse> {
  const method = (init.method ?? 'GET').toUpperCase();
  const what = method;
  const res = resolveOptions(opts);
  const target = parseTarget(url, what);
  const headers = requestHeaders(target, res, Object.entries(init.headers ?? {}), target.url.origin);
  const op = new Operation(res);
  const budget = new RetryBudget(res, op, (a, n) => fetchError(what, url, a, n), `${what} ${redactUrl(url)}`);
  const idempotent = IDEMPOTENT.has(method);
  for (;;) {
    try {
      const ex = await sendFollowing(target.url, { method, headers, body: init.body }, res, op);
      if (idempotent && isRetryableStatus(ex.status) && budget.failures < res.retries) {
        await ex.body.dump().catch(() => undefined);
        const retryAfterMs = parseRetryAfter(ex.headers['retry-after']);
        const init: ConstructorParameters<typeof AttemptError>[1] = { kind: 'http', transient: true, status: ex.status };
        if (retryAfterMs !== undefined) init.retryAfterMs = retryAfterMs;
        await budget.failed(new AttemptError(`HTTP ${ex.status} ${ex.statusText}`, init));
        continue;
      }
      return {
        status: ex.status,
        statusText: ex.statusText,
        headers: ex.headers,
        url: ex.url.href,
        body: guardBody(ex.body, op, (err) => fetchError(what, url, op.classify(err), budget.failures)),
      };
    } catch (err) {
      if (err instanceof FetchError) {
        op.dispose();
        throw err;
      }
      try {
        await budget.failed(err, { allowRetry: idempotent });
      } catch (final) {
        op.dispose();
        throw final;
      }
    }
  }
}

/**
 * Passes the body through, turning its errors into one-line FetchErrors, and keeps the
 * operation's deadline armed until the body is finished.
 */
function guardBody(body: Readable, op: Operation, wrap: (err: unknown) => Error): Readable {
  const out = new PassThrough({ highWaterMark: 64 * 1024 });
  body.on('error', (err) => out.destroy(wrap(err)));
  out.on('close', () => {
    op.dispose();
    if (!body.readableEnded) body.destroy();
  });
  body.pipe(out);
  return out;
}
