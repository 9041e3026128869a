/** When to retry and how long to wait. */

/** 408 Request Timeout, 429 Too Many Requests and server errors are worth another try. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/** A server's Retry-After is obeyed up to this long; beyond it we would rather fail. */
export const MAX_RETRY_AFTER_MS = 300_000;

/** Backoff never grows beyond this, whatever the base. */
const MAX_BACKOFF_FACTOR = 64;

/**
 * Parses a Retry-After value (delay in seconds or an HTTP date) into milliseconds from `now`;
 * undefined when absent or unparseable.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * Delay before retry number `failure` (1-based): exponential from `baseMs`, with "equal
 * jitter" (half fixed, half random) so that many clients do not retry in lock-step. A
 * Retry-After from the server takes precedence.
 */
export function retryDelayMs(failure: number, baseMs: number, retryAfterMs?: number, random: () => number = Math.random): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, MAX_RETRY_AFTER_MS);
  const exp = baseMs * Math.min(2 ** (failure - 1), MAX_BACKOFF_FACTOR);
  return Math.round(exp / 2 + random() * (exp / 2));
}
