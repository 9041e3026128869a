import { EXIT, UserError } from './errors.js';

/**
 * `--retry N` as the curl flag the fetch layer already reads from NIX_CURL_FLAGS, so that it
 * reaches the builder through the caller's environment and never changes a recipe.
 */
export function retryCurlFlag(retry: number | undefined): string | undefined {
  if (retry === undefined) return undefined;
  if (!Number.isInteger(retry) || retry < 0) throw new UserError(`--retry must be a non-negative integer, got ${retry}`, EXIT.usage);
  return `--retry ${retry}`;
}
