/**
 * Resumable downloads: an ordered stream of body chunks that survives broken connections
 * (Range: bytes=N-), servers that ignore Range (restart or skip), stalls and retryable
 * statuses, hashing as it goes. Nothing is buffered beyond one chunk.
 */
import { createHash, type Hash as NodeHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { Hash, type HashAlgo } from '../hash/index.js';
import { AttemptError, redactUrl } from './errors.js';
import { Operation, RetryBudget, fetchError, parseTarget, requestHeaders, sendFollowing, type Exchange, type Target } from './http.js';
import { resolveOptions, type FetchOptions, type Resolved } from './options.js';
import { reclaimAfter } from './reclaim.js';
import { isRetryableStatus, parseRetryAfter } from './retry.js';

export interface OpenDownloadOptions extends FetchOptions {
  /** Hash the delivered bytes with this algorithm (see DownloadStream.digest()). */
  algo?: HashAlgo;
  /**
   * Called when the server ignores a Range request and the body must start again from byte 0:
   * the consumer discards what it has (truncate the file, reset its state) and the stream
   * then delivers the body from the start. Without it the stream skips the bytes already
   * delivered instead (and fails if the resource visibly changed), so a consumer never sees
   * a byte twice.
   */
  onRestart?: () => void | Promise<void>;
}

/** An open download; iterate it once to receive the body in order. */
export interface DownloadStream extends AsyncIterable<Buffer> {
  /** Status and headers of the response whose body is being delivered (lower-case names). */
  readonly status: number;
  readonly headers: Record<string, string>;
  /** The URL that answered, after redirects (without credentials). */
  readonly finalUrl: string;
  /** The full size, when the server said it. */
  readonly total: number | undefined;
  /** Bytes delivered so far. */
  readonly received: number;
  /** How many times the download continued with a Range request, and restarted from 0. */
  readonly resumes: number;
  readonly restarts: number;
  /** The hash of the delivered bytes; only after the iteration completed and with `algo` set. */
  digest(): Hash;
  /** Releases the connection when the stream will not be iterated (iterating cleans up by itself). */
  cancel(): void;
}

export interface DownloadResult {
  size: number;
  hash: Hash;
  finalUrl: string;
  status: number;
  headers: Record<string, string>;
}

/** Options the public face does not expose. */
export interface InternalOptions {
  /** Origin allowed to receive Authorization/Cookie (default: the URL's own). */
  trustedOrigin?: string;
}

/** A failed attempt that delivered at least this many new bytes does not use up a retry. */
const PROGRESS_CREDIT = 1 << 20;

interface Pending {
  /** The response to read; absent when there is nothing left to read. */
  ex: Exchange | undefined;
  /** Bytes at the start of this body already delivered (server ignored Range, no onRestart). */
  skip: number;
  /** Absolute offset where this body ends, when known. */
  end: number | undefined;
}

function contentLength(headers: Record<string, string>): number | undefined {
  const v = headers['content-length'];
  return v !== undefined && /^\d+$/.test(v.trim()) ? Number(v.trim()) : undefined;
}

export function parseContentRange(value: string | undefined): { start: number; end: number; total: number | undefined } | undefined {
  const m = value === undefined ? null : /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value.trim());
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) return undefined;
  return { start, end, total: m[3] === '*' ? undefined : Number(m[3]) };
}

function protocolError(message: string): AttemptError {
  return new AttemptError(message, { kind: 'protocol', transient: false });
}

class Download implements DownloadStream {
  status = 0;
  headers: Record<string, string> = {};
  finalUrl = '';
  total: number | undefined;
  received = 0;
  resumes = 0;
  restarts = 0;

  private readonly op: Operation;
  private readonly budget: RetryBudget;
  private hasher: NodeHash | undefined;
  private result: Hash | undefined;
  private pending: Pending | undefined;
  private iterated = false;
  private etag: string | undefined;
  private lastModified: string | undefined;
  private progressed = 0;

  constructor(
    url: string,
    private readonly target: Target,
    private readonly res: Resolved,
    private readonly algo: HashAlgo | undefined,
    private readonly onRestart: (() => void | Promise<void>) | undefined,
    private readonly trustedOrigin: string,
  ) {
    this.op = new Operation(res);
    this.budget = new RetryBudget(res, this.op, (a, n) => fetchError('download of', url, a, n), `download of ${redactUrl(url)}`);
    if (algo) this.hasher = createHash(algo);
  }

  async open(): Promise<void> {
    try {
      this.pending = await this.obtain();
    } catch (err) {
      this.op.dispose();
      throw err;
    }
  }

  cancel(): void {
    this.pending?.ex?.body.destroy();
    this.pending = undefined;
    this.op.dispose();
  }

  digest(): Hash {
    if (!this.result) throw new Error(this.algo ? 'download digest asked for before the body was complete' : 'download opened without a hash algorithm');
    return this.result;
  }

  /** The next response to read from, retrying as allowed. */
  private async obtain(): Promise<Pending> {
    for (;;) {
      try {
        return await this.attempt(true);
      } catch (err) {
        await this.budget.failed(err);
      }
    }
  }

  private async attempt(useRange: boolean): Promise<Pending> {
    const from = this.received;
    const extra: Array<[string, string]> = [];
    const ranged = useRange && from > 0;
    if (ranged) {
      extra.push(['Range', `bytes=${from}-`]);
      // If-Range needs a strong validator; with it a changed resource comes back whole (200).
      const validator = this.etag && !this.etag.startsWith('W/') ? this.etag : this.lastModified;
      if (validator) extra.push(['If-Range', validator]);
    }
    const headers = requestHeaders(this.target, this.res, extra, this.trustedOrigin);
    const ex = await sendFollowing(this.target.url, { method: 'GET', headers, body: undefined }, this.res, this.op);
    const st = ex.status;
    const drop = async (): Promise<void> => ex.body.dump().catch(() => undefined);
    // After a redirect, say who answered: the message names only the URL the caller gave.
    const answered = ex.url.href === this.target.url.href ? '' : ` from ${redactUrl(ex.url)}`;
    if (isRetryableStatus(st)) {
      await drop();
      const init: ConstructorParameters<typeof AttemptError>[1] = { kind: 'http', transient: true, status: st };
      const retryAfterMs = parseRetryAfter(ex.headers['retry-after']);
      if (retryAfterMs !== undefined) init.retryAfterMs = retryAfterMs;
      throw new AttemptError(`HTTP ${st} ${ex.statusText}${answered}`, init);
    }
    if (ranged && st === 416) {
      await drop();
      // "bytes */N" with N = what we have: the break came right after the last byte.
      const m = /^bytes\s+\*\/(\d+)$/i.exec(ex.headers['content-range']?.trim() ?? '');
      if (m && Number(m[1]) === from && (this.total === undefined || this.total === from)) {
        this.total = from;
        return { ex: undefined, skip: 0, end: from };
      }
      return this.attempt(false);
    }
    if (st === 206) {
      if (!ranged) {
        await drop();
        throw protocolError('HTTP 206 Partial Content to a request without Range');
      }
      try {
        return this.acceptPartial(ex, from);
      } catch (err) {
        await drop();
        throw err;
      }
    }
    if (st < 200 || st >= 300) {
      await drop();
      throw new AttemptError(`HTTP ${st} ${ex.statusText}${answered}`, { kind: 'http', transient: false, status: st });
    }
    try {
      return await this.acceptFull(ex, from);
    } catch (err) {
      await drop();
      throw err;
    }
  }

  private acceptPartial(ex: Exchange, from: number): Pending {
    const raw = ex.headers['content-range'];
    const range = parseContentRange(raw);
    if (!range || range.start !== from) {
      throw protocolError(`asked for bytes ${from}- but the server sent Content-Range '${raw ?? '(none)'}'`);
    }
    const len = contentLength(ex.headers);
    if (len !== undefined && len !== range.end - range.start + 1) {
      throw protocolError(`Content-Length ${len} disagrees with Content-Range '${raw}'`);
    }
    if (range.total !== undefined && this.total !== undefined && range.total !== this.total) {
      throw protocolError(`size changed from ${this.total} to ${range.total} bytes while resuming`);
    }
    if (range.total !== undefined) this.total = range.total;
    this.resumes++;
    return { ex, skip: 0, end: range.end + 1 };
  }

  private async acceptFull(ex: Exchange, from: number): Promise<Pending> {
    const len = contentLength(ex.headers);
    const etag = ex.headers.etag;
    const lastModified = ex.headers['last-modified'];
    let skip = 0;
    if (from > 0) {
      if (this.onRestart) {
        await this.onRestart();
        this.received = 0;
        if (this.algo) this.hasher = createHash(this.algo);
        this.res.onProgress?.(0, len);
      } else {
        const changed = (this.etag !== undefined && etag !== undefined && etag !== this.etag)
          || (this.lastModified !== undefined && lastModified !== undefined && lastModified !== this.lastModified)
          || (this.total !== undefined && len !== undefined && len !== this.total);
        if (changed) throw protocolError(`the resource changed while resuming at byte ${from} (the bytes already delivered cannot be taken back)`);
        skip = from;
      }
      this.restarts++;
    }
    this.status = ex.status;
    this.headers = ex.headers;
    this.finalUrl = ex.url.href;
    this.etag = etag;
    this.lastModified = lastModified;
    this.total = len;
    return { ex, skip, end: len };
  }

  private async *pump(p: Pending): AsyncGenerator<Buffer, void, undefined> {
    if (!p.ex) return;
    let skip = p.skip;
    const end = p.end;
    try {
      for await (const chunk of p.ex.body as AsyncIterable<Buffer>) {
        let c = chunk;
        if (skip > 0) {
          if (c.length <= skip) {
            skip -= c.length;
            continue;
          }
          c = c.subarray(skip);
          skip = 0;
        }
        if (end !== undefined && this.received + c.length > end) {
          throw protocolError(`the server sent more than the ${end} bytes it announced`);
        }
        this.received += c.length;
        this.progressed += c.length;
        reclaimAfter(chunk.length);
        this.hasher?.update(c);
        this.res.onProgress?.(this.received, this.total);
        yield c;
      }
    } catch (err) {
      // A connection error after the last announced byte has lost nothing.
      if (!(err instanceof AttemptError) && end !== undefined && skip === 0 && this.received === end && !this.op.signal.aborted) return;
      throw err;
    }
    if (skip > 0) {
      throw new AttemptError(`connection closed ${skip} bytes before reaching the resume point ${p.skip}`, { kind: 'network', transient: true });
    }
    if (end !== undefined && this.received < end) {
      throw new AttemptError(`body ended after ${this.received} of ${end} bytes`, { kind: 'network', transient: true });
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    if (this.iterated) throw new Error('a download can be iterated only once');
    this.iterated = true;
    try {
      for (;;) {
        const p = this.pending ?? (await this.obtain());
        this.pending = undefined;
        this.progressed = 0;
        try {
          yield* this.pump(p);
        } catch (err) {
          if (this.progressed >= PROGRESS_CREDIT) this.budget.failures = 0;
          await this.budget.failed(err);
          continue;
        }
        // A 206 may cover less than the rest; ask for what remains.
        if (this.total !== undefined && this.received < this.total) continue;
        if (this.algo && this.hasher) this.result = new Hash(this.algo, this.hasher.digest());
        return;
      }
    } finally {
      this.cancel();
    }
  }
}

/**
 * Opens a resumable download of `url`: resolves once a successful response has started
 * (HTTP errors, exhausted retries and bad options reject here), then yields the body's chunks
 * in order, resuming or restarting as needed, without ever repeating a byte.
 */
export async function openDownload(url: string, opts: OpenDownloadOptions = {}): Promise<DownloadStream> {
  return openDownloadWith(url, opts, {});
}

export async function openDownloadWith(url: string, opts: OpenDownloadOptions, internal: InternalOptions): Promise<DownloadStream> {
  const res = resolveOptions(opts);
  const target = parseTarget(url, 'download of');
  const dl = new Download(url, target, res, opts.algo, opts.onRestart, internal.trustedOrigin ?? target.url.origin);
  await dl.open();
  return dl;
}

/** Writes all of `bytes` at `position` (a write may take less than it was given). */
export async function writeFullyAt(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let off = 0; off < bytes.length;) {
    const { bytesWritten } = await fh.write(bytes, off, bytes.length - off, position + off);
    off += bytesWritten;
  }
}

/**
 * Streams the body of `url` into `destPath` (created/truncated), resuming or restarting as
 * needed and hashing with `algo` as it goes. Resolves once the whole body is on disk (fsync'd).
 */
export async function downloadToFile(url: string, destPath: string, algo: HashAlgo, opts: FetchOptions = {}): Promise<DownloadResult> {
  return downloadToFileWith(url, destPath, algo, opts, {});
}

export async function downloadToFileWith(url: string, destPath: string, algo: HashAlgo, opts: FetchOptions, internal: InternalOptions): Promise<DownloadResult> {
  const fh = await open(destPath, 'w');
  try {
    let pos = 0;
    const dl = await openDownloadWith(url, {
      ...opts,
      algo,
      onRestart: async () => {
        await fh.truncate(0);
        pos = 0;
      },
    }, internal);
    for await (const chunk of dl) {
      await writeFullyAt(fh, chunk, pos);
      pos += chunk.length;
    }
    await fh.sync();
    return { size: pos, hash: dl.digest(), finalUrl: dl.finalUrl, status: dl.status, headers: dl.headers };
  } finally {
    await fh.close();
  }
}
