/**
 * Requests whose body is a stream: the monolithic blob upload (PUT with the whole blob, read
 * from the source as it is sent). lib/fetch's request() takes only string or Buffer bodies, so
 * this goes to undici directly, with the same settings resolved from FetchOptions (CA bundle,
 * tls-verify, connect and stall timeouts, curl -H headers, abort signal). lib/fetch does not
 * export its proxy dispatchers, so a streamed body is only sent on a direct connection:
 * `canStream()` says whether a proxy applies, and the uploader falls back to chunked uploads
 * (bounded Buffers through request(), which honours every proxy) when one does.
 */
import type { Readable } from 'node:stream';
import type { Agent } from 'undici';
import { loadUndici } from '../fetch/index.js';
import { FetchError, resolveOptions, selectProxy, type FetchOptions } from '../fetch/index.js';
import { RegistryError } from '../registry/index.js';

export interface StreamResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** At most 8 KiB of the answer: registries answer uploads with small bodies. */
  body: Buffer;
}

/** Headers that carry credentials: ours are added by the caller, never taken from curl flags. */
const SENSITIVE = new Set(['authorization', 'cookie', 'proxy-authorization']);

export class StreamTransport {
  private readonly res: ReturnType<typeof resolveOptions>;
  private agent: Agent | undefined;

  constructor(opts: FetchOptions) {
    this.res = resolveOptions(opts);
  }

  /** Whether `url` is reached without a proxy (the only case this transport handles). */
  canStream(url: URL): boolean {
    return selectProxy(url, this.res.env, this.res.proxy) === null;
  }

  /** Sends `body` (exactly `length` bytes) and returns the answer; errors of `body` propagate as they are. */
  async send(method: string, url: URL, headers: Record<string, string>, body: Readable, length: number): Promise<StreamResponse> {
    const res = this.res;
    const { Agent, request: undiciRequest } = await loadUndici();
    this.agent ??= new Agent({
      allowH2: false,
      keepAliveTimeout: 4_000,
      connect: { ...(res.ca !== undefined ? { ca: res.ca } : {}), rejectUnauthorized: !res.insecure, timeout: res.connectTimeoutMs },
    });
    const merged: Record<string, string> = { 'user-agent': 'fetch-image' };
    for (const [k, v] of res.headers) if (!SENSITIVE.has(k.toLowerCase())) merged[k.toLowerCase()] = v;
    for (const [k, v] of Object.entries(headers)) merged[k.toLowerCase()] = v;
    merged['content-length'] = String(length);
    let sourceError: unknown;
    body.once('error', (err) => {
      sourceError = err;
    });
    try {
      const r = await undiciRequest(url, {
        dispatcher: this.agent,
        method,
        headers: merged,
        body,
        ...(res.signal ? { signal: res.signal } : {}),
        // Refreshed while the body is written, so these act as stall timeouts.
        headersTimeout: res.stallTimeoutMs,
        bodyTimeout: res.stallTimeoutMs,
      });
      const flat: Record<string, string> = {};
      for (const [k, v] of Object.entries(r.headers)) if (v !== undefined) flat[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of r.body as AsyncIterable<Buffer>) {
        if (n < 8192) chunks.push(c);
        n += c.length;
      }
      return { status: r.statusCode, headers: flat, body: Buffer.concat(chunks).subarray(0, 8192) };
    } catch (err) {
      // A failing source (size or digest mismatch, a broken download) is the real story.
      if (sourceError instanceof RegistryError || sourceError instanceof FetchError) throw sourceError;
      if (err instanceof RegistryError || err instanceof FetchError) throw err;
      const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
      const detail = err instanceof Error ? err.message : String(err);
      throw new FetchError(method, stripQuery(url), typeof code === 'string' && !detail.includes(code) ? `${detail} (${code})` : detail, { kind: 'network', transient: true, cause: err });
    }
  }

  async close(): Promise<void> {
    const a = this.agent;
    this.agent = undefined;
    await a?.close().catch(() => undefined);
  }
}

/** Upload URLs carry opaque state in their query: messages show only the path. */
export function stripQuery(url: URL): string {
  return `${url.origin}${url.pathname}`;
}
