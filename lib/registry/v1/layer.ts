/**
 * `GET /v1/images/<id>/layer` streamed to a file, resuming a broken transfer with Range —
 * what pull.sh's fetchLayer did with `curl -C -` while curl exited 18 (partial file).
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { discardBody, headerValue, showUrl } from './http.js';
import { V1RegistryError, type V1Session } from './session.js';

export interface LayerDownload {
  size: number;
  /** How many times the transfer broke and was resumed. */
  resumes: number;
}

export interface LayerDownloadOptions {
  /** Breaks tolerated per layer (pull.sh looped without limit). */
  maxResumes: number;
  onBytes?: (received: number, total: number | undefined) => void;
  onResume?: (at: number, reason: string) => void;
  /** Turns a non-200/206 answer into the error to throw. */
  statusError: (status: number, url: URL) => Error;
}

/** `bytes START-END/TOTAL` → [start, total]; total is undefined for `*`. */
function parseContentRange(v: string | undefined): [number, number | undefined] | undefined {
  const m = v === undefined ? null : /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/.exec(v);
  if (!m) return undefined;
  return [Number(m[1]), m[3] === '*' ? undefined : Number(m[3])];
}

export async function downloadLayer(session: V1Session, url: URL, dest: string, what: string, opts: LayerDownloadOptions): Promise<LayerDownload> {
  const fh = await open(dest, 'w', 0o644);
  let have = 0;
  let resumes = 0;
  try {
    for (;;) {
      const { res, url: finalUrl } = await session.get(url, what, have > 0 ? { Range: `bytes=${have}-` } : {});
      let total: number | undefined;
      if (res.status === 206 && have > 0) {
        const range = parseContentRange(headerValue(res, 'content-range'));
        if (!range || range[0] !== have) {
          // Not the bytes we asked for: start over rather than splice a wrong range in.
          discardBody(res.body);
          await fh.truncate(0);
          have = 0;
          if (++resumes > opts.maxResumes) throw new V1RegistryError(`${what}: ${showUrl(finalUrl)} answered a Range request with the wrong range`, 'protocol', 206);
          continue;
        }
        total = range[1];
      } else if (res.status === 200) {
        if (have > 0) await fh.truncate(0); // Range ignored: the whole layer again
        have = 0;
        const len = headerValue(res, 'content-length');
        total = len !== undefined && /^\d+$/.test(len) ? Number(len) : undefined;
      } else if (res.status === 416 && have > 0) {
        // The break came after the last byte: `bytes */N` with N == have means we are done.
        discardBody(res.body);
        const m = /^bytes \*\/(\d+)$/.exec(headerValue(res, 'content-range') ?? '');
        if (m && Number(m[1]) === have) return { size: have, resumes };
        await fh.truncate(0);
        have = 0;
        if (++resumes > opts.maxResumes) throw opts.statusError(416, finalUrl);
        continue;
      } else {
        discardBody(res.body);
        throw opts.statusError(res.status, finalUrl);
      }
      const state = { pos: have };
      try {
        await appendBody(res.body, fh, state, (n) => opts.onBytes?.(n, total));
        have = state.pos;
        if (total !== undefined && have < total) throw new Error(`stream ended after ${have} of ${total} bytes`);
        if (total !== undefined && have > total) {
          throw new V1RegistryError(`${what}: ${showUrl(finalUrl)} sent ${have} bytes, more than the ${total} announced`, 'protocol');
        }
        return { size: have, resumes };
      } catch (err) {
        have = state.pos; // bytes written so far are good: resume after them
        if (err instanceof V1RegistryError || err instanceof WriteError || session.signal?.aborted) throw err;
        const reason = err instanceof Error ? err.message : String(err);
        if (++resumes > opts.maxResumes) {
          throw new V1RegistryError(`${what}: transfer broke ${resumes} times, giving up at byte ${have}: ${reason}`, 'network');
        }
        opts.onResume?.(have, reason);
      }
    }
  } finally {
    await fh.close();
  }
}

/** A failure of our own file, not of the transfer: not worth resuming. */
class WriteError extends Error {}

async function appendBody(body: Readable, fh: FileHandle, state: { pos: number }, onBytes: (n: number) => void): Promise<void> {
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      let off = 0;
      while (off < chunk.length) {
        let n: number;
        try {
          n = (await fh.write(chunk, off, chunk.length - off, state.pos)).bytesWritten;
        } catch (err) {
          throw new WriteError(`cannot write the layer: ${(err as Error).message}`);
        }
        off += n;
        state.pos += n;
      }
      onBytes(state.pos);
    }
  } finally {
    body.destroy();
  }
}
