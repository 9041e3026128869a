/**
 * V1Http over lib/fetch's request(): proxies from the environment, NIX_CURL_FLAGS/curlOpts,
 * timeouts and CAs as every other download. lib/fetch follows redirects itself (sending
 * Authorization and Cookie to the first origin only), so the session sees the final answer:
 * cookies set on an intermediate redirect answer are not kept — the v1 registries set theirs
 * on ordinary answers. Retries stay with the session (one policy, not two stacked).
 */
import { request, type FetchOptions } from '../../fetch/index.js';
import type { V1Http } from './http.js';

/** lib/fetch joins repeated headers with ", "; split Set-Cookie back where a new name=value starts. */
export function splitSetCookie(joined: string | undefined): string[] {
  return joined === undefined ? [] : joined.split(/,\s*(?=[^;,=\s]+=)/);
}

export function fetchHttp(opts: FetchOptions = {}): V1Http {
  return async ({ url, headers, signal }) => {
    const res = await request(url.href, { method: 'GET', headers }, { ...opts, retries: 0, signal: signal ?? opts.signal });
    return {
      status: res.status,
      headers: { ...res.headers, 'set-cookie': splitSetCookie(res.headers['set-cookie']) },
      body: res.body,
      url: new URL(res.url),
    };
  };
}
