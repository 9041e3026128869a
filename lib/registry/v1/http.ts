/**
 * The one HTTP exchange the v1 client needs: a GET, ideally without following redirects, so
 * the session can decide per hop which credentials and cookies go where. A transport that does
 * follow redirects (lib/fetch, see fetch-http.ts) must itself keep Authorization and Cookie on
 * the first origin, and reports the URL that answered.
 *
 * pullV1 uses lib/fetch by default (proxies, NIX_CURL_FLAGS, timeouts, CAs); undiciHttp is the
 * per-hop variant without those. Nothing else in this folder touches the network.
 */
import type { Readable } from 'node:stream';
import { loadUndici } from '../../fetch/index.js';

export interface V1HttpRequest {
  url: URL;
  /** Header names as given; values never logged. */
  headers: Record<string, string>;
  signal?: AbortSignal;
}

export interface V1HttpResponse {
  status: number;
  /** Lower-case names; repeated headers (Set-Cookie) as arrays. */
  headers: Record<string, string | string[] | undefined>;
  /** Must be consumed or destroyed by the caller. */
  body: Readable;
  /** Set when the transport followed redirects itself: the URL that answered. */
  url?: URL;
}

export type V1Http = (req: V1HttpRequest) => Promise<V1HttpResponse>;

/** undici's request(): one exchange, redirects not followed (undici 7 follows none by default). */
export const undiciHttp: V1Http = async ({ url, headers, signal }) => {
  const { request } = await loadUndici();
  const res = await request(url, { method: 'GET', headers, signal });
  return { status: res.statusCode, headers: res.headers, body: res.body };
};

/** First value of a header, trimmed. */
export function headerValue(res: V1HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined ? undefined : first.trim();
}

export function headerValues(res: V1HttpResponse, name: string): string[] {
  const v = res.headers[name.toLowerCase()];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** Reads a small body whole, refusing more than `limit` bytes. */
export async function readSmallBody(body: Readable, limit: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      throw new Error(`${what}: answer larger than ${limit} bytes`);
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

/** Throws the body away without failing (the answer is already decided). */
export function discardBody(body: Readable): void {
  // A body that fails while being thrown away changes nothing.
  body.on('error', () => undefined);
  body.resume();
}

/** A URL fit for messages: origin and path only (signed storage URLs carry secrets in the query). */
export function showUrl(url: URL): string {
  return url.origin + url.pathname;
}
