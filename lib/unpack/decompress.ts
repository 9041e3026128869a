import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { createDecompressor } from 'lzma-native';
import type { ArchiveFormat } from './detect.js';
import { CorruptArchiveError } from './errors.js';

const CHUNK = 256 * 1024;
/*
 * Neither decoder below can pause mid-input: each turns a whole input chunk into output at
 * once. Zeros compress about 7000:1 in xz and 32768:1 in zstd (RLE blocks), so a 256 KiB chunk
 * could become gigabytes in memory. Feeding them slices bounds that to ~28 MB (xz) and ~16 MB
 * (zstd) per slice, and the next slice waits until the output has been taken.
 */
const XZ_SLICE = 4 * 1024;
const ZSTD_SLICE = 512;

/** gzip through Node's zlib, which already stops producing while its output is unread. */
function gunzip(source: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  const gz = createGunzip({ chunkSize: CHUNK });
  // Errors on either side destroy `gz`, so they surface while it is iterated.
  pipeline(source, gz).catch(() => undefined);
  return gz;
}

/**
 * xz through liblzma (lzma-native: prebuilt N-API binaries in the package, source fallback
 * bundled, nothing fetched at install). It decodes every xz feature (concatenated streams,
 * SHA-256 checks, BCJ/delta filters) and reports truncation; the WASM xz-decompress lacks the
 * first three and node-liblzma silently accepted a truncated file. Fed slice by slice.
 */
async function* unxz(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  // On the main thread: a pool round trip per small slice costs more than it overlaps, and
  // liblzma's buffers from pool threads inflated the peak RSS by a third.
  const dec = createDecompressor({ bufsize: 64 * 1024, synchronous: true });
  const out: Buffer[] = [];
  let failure: Error | undefined;
  let ended = false;
  let wake: ((e?: Error) => void) | undefined;
  const settle = (e?: Error): void => {
    const w = wake;
    wake = undefined;
    w?.(e);
  };
  dec.on('data', (c: Buffer) => out.push(c));
  // liblzma errors do not call back the pending write: the error event must end the wait.
  dec.once('error', (e: Error) => { failure = e; settle(e); });
  dec.once('end', () => { ended = true; settle(); });
  const wait = (start: () => void): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (failure) return reject(failure);
      wake = (e) => (e ? reject(e) : resolve());
      start();
    });
  try {
    for await (const chunk of source) {
      for (let off = 0; off < chunk.length; off += XZ_SLICE) {
        await wait(() => dec.write(chunk.subarray(off, off + XZ_SLICE), (e) => settle(e ?? undefined)));
        while (out.length > 0) yield out.shift() as Buffer;
      }
    }
    dec.end();
    while (!ended) {
      if (out.length > 0) yield out.shift() as Buffer;
      else await wait(() => undefined);
    }
    while (out.length > 0) yield out.shift() as Buffer;
  } finally {
    dec.destroy();
  }
}

/** zstd through fzstd (pure JS, concatenated frames, truncation found at the end). */
async function* unzstd(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const out: Buffer[] = [];
  // fzstd reuses its window for later output: keep a copy.
  const dec = new Decompress((chunk) => { if (chunk.length > 0) out.push(Buffer.from(chunk)); });
  for await (const chunk of source) {
    for (let off = 0; off < chunk.length; off += ZSTD_SLICE) {
      dec.push(chunk.subarray(off, off + ZSTD_SLICE));
      while (out.length > 0) yield out.shift() as Buffer;
    }
  }
  dec.push(new Uint8Array(0), true);
  while (out.length > 0) yield out.shift() as Buffer;
}

/**
 * The tar bytes of an archive file, decompressed as a pull stream: only a few chunks are in
 * memory at any time, whatever the archive's size or compression ratio. Decoder failures
 * (corrupt or truncated data) surface as {@link CorruptArchiveError} while iterating.
 */
export async function* tarBytes(path: string, format: Exclude<ArchiveFormat, 'zip'>, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const src = createReadStream(path, { highWaterMark: CHUNK });
  const decoded: AsyncIterable<Buffer> =
    format === 'tar' ? src : format === 'tar.gz' ? gunzip(src) : format === 'tar.xz' ? unxz(src) : unzstd(src);
  try {
    for await (const chunk of decoded) {
      signal?.throwIfAborted();
      yield chunk;
    }
  } catch (e) {
    if (signal?.aborted || format === 'tar') throw e;
    throw new CorruptArchiveError(`cannot decompress the ${format.slice(4)} stream: ${describe(e)}`);
  } finally {
    src.destroy();
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    // lzma-native errors carry liblzma's text in `desc`, and a bare code as the name.
    const desc = 'desc' in e && typeof e.desc === 'string' ? e.desc : '';
    // LZMA_BUF_ERROR at the end of input: the stream stops short.
    if (desc === 'No progress is possible') return 'unexpected end of input (the file is truncated)';
    return desc || e.message || e.name;
  }
  return String(e);
}
