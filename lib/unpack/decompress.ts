import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { createDecompressor } from 'lzma-native';
import type { ArchiveFormat } from './detect.js';
import { CorruptArchiveError } from './errors.js';

const CHUNK = 256 * 1024;

/** Streaming zstd on fzstd (pure JS; it handles concatenated frames and checks truncation at the end). */
class ZstdDecoder extends Transform {
  private readonly inner = new Decompress((chunk) => {
    // fzstd reuses its window buffer for later output: hand a copy downstream.
    if (chunk.length > 0) this.push(Buffer.from(chunk));
  });

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.inner.push(chunk);
      done();
    } catch (e) {
      done(e as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.inner.push(new Uint8Array(0), true);
      done();
    } catch (e) {
      done(e as Error);
    }
  }
}

function decoder(format: Exclude<ArchiveFormat, 'tar' | 'zip'>): Transform {
  switch (format) {
    case 'tar.gz':
      return createGunzip({ chunkSize: CHUNK });
    case 'tar.xz':
      // liblzma on libuv's pool: decoding overlaps with our writes on the main thread.
      return createDecompressor({ bufsize: CHUNK });
    case 'tar.zst':
      return new ZstdDecoder();
  }
}

/**
 * The tar bytes of an archive file, decompressed as a stream with back-pressure: only a few
 * chunks are ever in memory. Decoder failures (corrupt or truncated data) surface as
 * {@link CorruptArchiveError} while iterating.
 */
export async function* tarBytes(path: string, format: Exclude<ArchiveFormat, 'zip'>, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const src = createReadStream(path, { highWaterMark: CHUNK });
  if (format === 'tar') {
    try {
      for await (const chunk of src) yield chunk as Buffer;
    } finally {
      src.destroy();
    }
    return;
  }
  const dec = decoder(format);
  // Settles either way: errors are seen through the iteration below, or do not matter once we stopped.
  const done = pipeline(src, dec, signal ? { signal } : {}).then(() => undefined, (e: unknown) => e);
  try {
    for await (const chunk of dec) yield chunk as Buffer;
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new CorruptArchiveError(`cannot decompress the ${format.slice(4)} stream: ${describe(e)}`);
  } finally {
    src.destroy();
    dec.destroy();
  }
  const err = await done;
  if (err !== undefined) {
    if (signal?.aborted) throw err;
    throw new CorruptArchiveError(`cannot decompress the ${format.slice(4)} stream: ${describe(err)}`);
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    // lzma-native errors carry liblzma's text in `desc`, and a bare code as the name.
    const desc = 'desc' in e && typeof e.desc === 'string' ? e.desc : '';
    return desc || e.message || e.name;
  }
  return String(e);
}
