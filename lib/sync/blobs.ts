/**
 * The blob side of the v2 upload API against one destination registry:
 * - `HEAD /v2/<name>/blobs/<digest>`: present → nothing to send;
 * - `POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>`: 201 = mounted; 202 = the
 *   registry could not mount and opened an ordinary upload session instead, which we use;
 * - monolithic: `POST …/uploads/` (202 + Location) then `PUT <Location>&digest=` with the
 *   whole blob streamed from the source;
 * - chunked: `PATCH <Location>` with `Content-Range: start-end` per bounded chunk (202 + a new
 *   Location each time: distribution's `_state` query changes), then an empty `PUT …&digest=`.
 *   A failed chunk is resumed from what the registry says it received (`GET <Location>` →
 *   204 + `Range: 0-N`), so only the missing bytes of that chunk go again.
 * Locations may be relative and carry a query: they are resolved against the request URL and
 * the query is kept. The result is checked by `HEAD` (size) before the blob counts as copied.
 */
import type { Readable } from 'node:stream';
import { FetchError } from '../fetch/index.js';
import { RegistryError } from '../registry/index.js';
import { readBody, repoScope, type RegistryHost } from './host.js';
import { stripQuery } from './stream.js';

/** Chunk retries after a failure, each resuming from the registry's Range. */
const CHUNK_ATTEMPTS = 4;

export interface Blob {
  digest: string;
  size: number;
}

/** Where an upload session lives; `url` carries the registry's query (`_state`, …). */
export interface Session {
  url: URL;
}

function location(res: { headers: Record<string, string> }, base: string | URL, what: string): URL {
  const loc = res.headers.location;
  if (loc === undefined || loc === '') throw new RegistryError(`${what}: the registry answered without a Location for the upload`, 'HTTP');
  try {
    return new URL(loc, base);
  } catch {
    throw new RegistryError(`${what}: the registry gave an invalid upload Location`, 'HTTP');
  }
}

/** The session URL with `digest=` appended; the registry's own query is kept byte for byte. */
function withDigest(url: URL, digest: string): URL {
  const u = new URL(url);
  const param = `digest=${encodeURIComponent(digest)}`;
  u.search = u.search.length > 1 ? `${u.search}&${param}` : `?${param}`;
  return u;
}

/** Parses `Range: 0-N` of an upload session: the number of bytes the registry holds. */
export function receivedBytes(range: string | undefined): number {
  const m = range === undefined ? null : /^(?:bytes=)?(\d+)-(\d+)$/.exec(range.trim());
  if (!m) return 0;
  const end = Number(m[2]);
  // distribution answers 0-0 for an empty session as well as for one byte; 0 is the safe reading.
  return end === 0 ? 0 : end + 1;
}

/** Whether trying the blob again could help: transport failures and server errors, not refusals. */
export function retryable(err: unknown): boolean {
  if (err instanceof FetchError) return err.transient || err.kind === 'timeout';
  if (err instanceof RegistryError) {
    if (err.code === 'DIGEST_MISMATCH' || err.code === 'SIZE_MISMATCH') return false;
    if (err.status !== undefined) return err.status >= 500 || err.status === 401 || err.status === 408 || err.status === 429;
    return retryable(err.cause);
  }
  return false;
}

export class BlobPusher {
  constructor(private readonly host: RegistryHost, private readonly actions: 'pull' | 'pull,push') {}

  private scope(path: string): string {
    return repoScope(path, this.actions);
  }

  /** Whether `path` holds the blob (and, when the registry says, with the expected size). */
  async exists(path: string, blob: Blob): Promise<boolean> {
    const what = `blob ${blob.digest} in ${this.host.domain}/${path}`;
    try {
      const res = await this.host.send('HEAD', await this.host.url(path, `blobs/${blob.digest}`), {}, this.scope(path));
      await readBody(res.body);
      if (res.status === 404) return false;
      if (res.status !== 200) throw await this.host.statusError(`HEAD ${what}`, res.status, Buffer.alloc(0));
      const len = res.headers['content-length'];
      return len === undefined || Number(len) === blob.size;
    } catch (err) {
      throw this.host.wrap(`HEAD ${what}`, err);
    }
  }

  /**
   * Asks the registry to mount the blob from another repository of the same registry. Returns
   * 'mounted', or the upload session the registry opened instead (or undefined if it refused).
   */
  async mount(path: string, blob: Blob, from: string): Promise<'mounted' | Session | undefined> {
    const url = `${await this.host.url(path, 'blobs/uploads/')}?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}`;
    const scope = `${this.scope(path)} ${repoScope(from, 'pull')}`;
    let res;
    try {
      res = await this.host.send('POST', url, { headers: { 'Content-Length': '0' }, body: '' }, scope);
    } catch {
      return undefined; // a mount is only a shortcut
    }
    await readBody(res.body);
    if (res.status === 201) return 'mounted';
    if (res.status === 202 && res.headers.location) return { url: location(res, url, `mount of ${blob.digest}`) };
    return undefined;
  }

  /** Opens an upload session (`POST …/blobs/uploads/` → 202 + Location). */
  async start(path: string, blob: Blob): Promise<Session> {
    const what = `upload of blob ${blob.digest} to ${this.host.domain}/${path}`;
    try {
      const url = await this.host.url(path, 'blobs/uploads/');
      const res = await this.host.send('POST', url, { headers: { 'Content-Length': '0' }, body: '' }, this.scope(path));
      const body = await readBody(res.body);
      if (res.status !== 202) throw await this.host.statusError(`start ${what}`, res.status, body);
      return { url: location(res, url, `start ${what}`) };
    } catch (err) {
      throw this.host.wrap(`start ${what}`, err);
    }
  }

  /** `PUT <session>&digest=` with the whole blob streamed from `source`. */
  async putWhole(path: string, session: Session, blob: Blob, source: Readable): Promise<void> {
    const what = `upload of blob ${blob.digest} to ${this.host.domain}/${path}`;
    const url = withDigest(session.url, blob.digest);
    try {
      const res = await this.host.sendStream('PUT', url, { 'Content-Type': 'application/octet-stream' }, source, blob.size, this.scope(path));
      this.checkCommitted(what, res.status, res.headers, blob);
      if (res.status >= 300) throw await this.host.statusError(what, res.status, res.body);
    } catch (err) {
      source.destroy();
      throw this.host.wrap(what, err);
    }
  }

  /**
   * PATCHes `source` in chunks of at most `chunkSize` bytes, then commits with an empty PUT.
   * A session that already holds `from` bytes continues there (the source's first `from` bytes
   * are read and dropped). `onChunk` hears of each chunk the registry acknowledged.
   */
  async putChunked(path: string, session: Session, blob: Blob, source: Readable, chunkSize: number,
    opts: { from?: number; onChunk?: (url: URL, offset: number) => Promise<void> } = {}): Promise<void> {
    const what = `upload of blob ${blob.digest} to ${this.host.domain}/${path}`;
    let url = session.url;
    let offset = opts.from ?? 0;
    let skip = offset;
    let pending: Buffer[] = [];
    let pendingLen = 0;
    const flush = async (n: number): Promise<void> => {
      const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingLen);
      const chunk = all.subarray(0, n);
      const rest = all.subarray(n);
      pending = rest.length ? [rest] : [];
      pendingLen = rest.length;
      url = await this.patch(path, url, chunk, offset, what);
      offset += chunk.length;
      await opts.onChunk?.(url, offset);
    };
    try {
      for await (const read of source as AsyncIterable<Buffer>) {
        let c = read;
        if (skip > 0) {
          const drop = Math.min(skip, c.length);
          skip -= drop;
          c = c.subarray(drop);
          if (c.length === 0) continue;
        }
        pending.push(c);
        pendingLen += c.length;
        while (pendingLen >= chunkSize) await flush(chunkSize);
      }
      if (pendingLen > 0) await flush(pendingLen);
      if (offset !== blob.size) throw new RegistryError(`${what}: sent ${offset} bytes, expected ${blob.size}`, 'SIZE_MISMATCH');
      const res = await this.host.send('PUT', withDigest(url, blob.digest).href, { headers: { 'Content-Type': 'application/octet-stream' }, body: '' }, this.scope(path));
      const body = await readBody(res.body);
      this.checkCommitted(what, res.status, res.headers, blob);
      if (res.status >= 300) throw await this.host.statusError(what, res.status, body);
    } catch (err) {
      source.destroy();
      throw this.host.wrap(what, err);
    }
  }

  /** One chunk, resumed from the registry's Range after a failure; returns the next Location. */
  private async patch(path: string, url: URL, chunk: Buffer, offset: number, what: string): Promise<URL> {
    let data = chunk;
    let at = offset;
    let lastError: unknown;
    for (let attempt = 0; attempt < CHUNK_ATTEMPTS; attempt++) {
      if (data.length === 0) return url;
      try {
        const res = await this.host.send('PATCH', url.href, {
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${at}-${at + data.length - 1}` },
          body: data,
        }, this.scope(path));
        const body = await readBody(res.body);
        if (res.status === 202 || res.status === 204) {
          const next = res.headers.location ? location(res, url, what) : url;
          const held = res.headers.range === undefined ? at + data.length : receivedBytes(res.headers.range);
          if (held !== at + data.length) throw new RegistryError(`${what}: the registry holds ${held} bytes after a chunk ending at ${at + data.length}`, 'HTTP');
          return next;
        }
        if (res.status !== 416 && res.status < 500) throw await this.host.statusError(`${what} (chunk at ${at})`, res.status, body);
        lastError = await this.host.statusError(`${what} (chunk at ${at})`, res.status, body);
      } catch (err) {
        if (!retryable(err)) throw err;
        lastError = err;
      }
      // Ask what arrived and send only the rest of this chunk. A session the registry no
      // longer accepts (it kept part of a broken request) ends here: the blob starts over.
      const status = await this.status(path, url, what).catch(() => {
        throw lastError;
      });
      const held = status.received;
      if (held < at || held > at + data.length) throw new RegistryError(`${what}: the registry holds ${held} bytes, outside the chunk ${at}-${at + data.length - 1} being resent`, 'HTTP', { cause: lastError });
      data = data.subarray(held - at);
      at = held;
      url = status.url;
    }
    throw this.host.wrap(`${what} (chunk at ${at})`, lastError);
  }

  /** `GET <session>` → 204 with the Range received and a fresh Location. */
  async status(path: string, url: URL, what: string): Promise<{ received: number; url: URL }> {
    const res = await this.host.send('GET', url.href, {}, this.scope(path));
    const body = await readBody(res.body);
    if (res.status !== 204 && res.status !== 200) throw await this.host.statusError(`${what}: upload status ${stripQuery(url)}`, res.status, body);
    return { received: receivedBytes(res.headers.range), url: res.headers.location ? location(res, url, what) : url };
  }

  /** A registry that stored something else under our digest (or says so) is an error. */
  private checkCommitted(what: string, status: number, headers: Record<string, string>, blob: Blob): void {
    if (status >= 300) return;
    const stored = headers['docker-content-digest'];
    if (stored !== undefined && stored !== blob.digest) throw new RegistryError(`${what}: the registry stored it as ${stored}`, 'DIGEST_MISMATCH');
  }

  /** Best effort: drops an upload session that will not be completed. */
  async cancel(path: string, session: Session): Promise<void> {
    try {
      const res = await this.host.send('DELETE', session.url.href, {}, this.scope(path));
      await readBody(res.body);
    } catch {
      // The registry purges abandoned sessions itself.
    }
  }
}
