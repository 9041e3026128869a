// NAR compression for binary caches, always as streams. xz: lzma-native (liblzma, the project's
// shared xz choice; multi-threaded encoder). zstd: @mongodb-js/zstd compresses independent
// frames of ZSTD_BLOCK bytes on libuv's thread pool (like pzstd); see zstd-frames.ts for decoding.
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { createBrotliDecompress, createGunzip } from 'node:zlib';
import { onFirstUse } from './on-first-use.js';
import { ZstdDecompressStream, zstdNative } from './zstd-frames.js';
// The module itself, not lib/image's face: mirror commands start without the image writers.
import { BlockCompressStream } from '../image/block-compress.js';

export type Compression = 'none' | 'xz' | 'zstd';
export const COMPRESSIONS: readonly Compression[] = ['zstd', 'xz', 'none'];
/** zstd: fast to write and read, and Nix (2.8 tested) reads it. `--compression xz` for older Nix. */
export const DEFAULT_COMPRESSION: Compression = 'zstd';

export function isCompression(s: string): s is Compression {
  return (COMPRESSIONS as readonly string[]).includes(s);
}

/** File name suffix Nix uses after `.nar`. */
export function narExtension(c: Compression): string {
  return c === 'xz' ? '.xz' : c === 'zstd' ? '.zst' : '';
}

/** The compression a NAR URL's suffix implies. */
export function compressionOfUrl(url: string): Compression | undefined {
  if (url.endsWith('.nar')) return 'none';
  if (url.endsWith('.nar.xz')) return 'xz';
  if (url.endsWith('.nar.zst')) return 'zstd';
  return undefined;
}

interface LzmaNative {
  createCompressor(opts: { preset: number; threads?: number; check: number }): Transform;
  createDecompressor(opts?: Record<string, never>): Transform;
  CHECK_CRC64: number;
}
/** A CommonJS addon without type declarations. */
const lzmaNative = onFirstUse<LzmaNative>('lzma-native');

const WORKERS = Math.max(1, Math.min(4, availableParallelism()));

/**
 * lzma-native's streams come from readable-stream 3, which Node's pipeline() cannot drive from
 * an async-generator source (it waits for a drain that never comes). This adapter is a plain
 * Node Transform around one, with back-pressure both ways.
 */
class Adapted extends Transform {
  private waiting: TransformCallback | undefined;
  constructor(private readonly inner: Transform) {
    super();
    inner.on('data', (d: Buffer) => {
      if (!this.push(d)) inner.pause();
    });
    inner.on('error', (e: Error) => this.destroy(e));
    inner.on('end', () => {
      const cb = this.waiting;
      this.waiting = undefined;
      cb?.();
    });
  }
  override _read(size: number): void {
    this.inner.resume();
    super._read(size);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.inner.write(chunk, (err) => done(err ?? undefined));
  }
  override _flush(done: TransformCallback): void {
    this.waiting = done;
    this.inner.end();
  }
  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    this.inner.destroy();
    done(err);
  }
}

/** xz at Nix's default preset 6 with CRC64, on as many threads as there are cores (≤ 4). */
function xzCompressor(level = 6): Transform {
  const lz = lzmaNative();
  return new Adapted(lz.createCompressor({ preset: level, check: lz.CHECK_CRC64, ...(WORKERS > 1 ? { threads: WORKERS } : {}) }));
}

/** zstd as independent frames of up to ZSTD_BLOCK input bytes (BlockCompressStream). */
const ZSTD_BLOCK = 8 << 20;

/** A compressing transform, or undefined for `none`. */
export function compressor(c: Compression, level?: number): Transform | undefined {
  if (c === 'none') return undefined;
  if (c === 'xz') return xzCompressor(level);
  return new BlockCompressStream(ZSTD_BLOCK, (block) => zstdNative().compress(block, level ?? 3));
}

type ClassicStream = NodeJS.EventEmitter & { write(chunk: Buffer): unknown; end(): unknown };
/** unbzip2-stream's module is its stream factory. */
const bunzip2Factory = onFirstUse<() => ClassicStream>('unbzip2-stream');

/**
 * bzip2 (Nix's oldest default) through unbzip2-stream, a pure-JS decoder built on `through`: a
 * classic stream whose write() takes no callback and emits its output synchronously, so it is
 * driven here with plain writes and its 'end' awaited on flush.
 */
class Bunzip2Stream extends Transform {
  private readonly inner: ClassicStream;
  private ended: TransformCallback | undefined;

  constructor() {
    super();
    const createBunzip2 = bunzip2Factory();
    this.inner = createBunzip2();
    this.inner.on('data', (d: Buffer) => this.push(d));
    this.inner.on('error', (e: Error) => this.destroy(e));
    this.inner.on('end', () => this.ended?.());
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.inner.write(chunk);
      done();
    } catch (e) {
      done(e as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    this.ended = done;
    try {
      this.inner.end();
    } catch (e) {
      done(e as Error);
    }
  }
}

/**
 * Decoders fail on bad input with their own words ("No progress is possible", "unexpected end
 * of file", a TypeError inside the bzip2 decoder): the message is put in context, in place, by
 * the first listener, before whoever pipes the stream sees the error.
 */
function explainErrors(t: Transform, method: string): Transform {
  t.once('error', (e: Error) => {
    // A decoder's own bug-like failure (a TypeError on truncated bzip2) says nothing to a user.
    const detail = e instanceof TypeError || e instanceof RangeError ? '' : ` (${e.message})`;
    e.message = `corrupt or truncated ${method} data${detail}`;
  });
  return t;
}

/** A decompressing transform for a narinfo's `Compression` value, or undefined for `none`. */
export function decompressor(method: string, where: string): Transform | undefined {
  switch (method) {
    case 'none':
    case '':
      return undefined;
    case 'xz':
      return explainErrors(new Adapted(lzmaNative().createDecompressor()), method);
    case 'zstd':
      return new ZstdDecompressStream(); // its errors say what and where already
    case 'br':
      return explainErrors(createBrotliDecompress(), method);
    case 'gzip':
      return explainErrors(createGunzip(), method);
    case 'bzip2':
      return explainErrors(new Bunzip2Stream(), method);
    default:
      throw new Error(`${where}: compression '${method}' is not supported (xz, zstd, br, gzip, bzip2 and none are)`);
  }
}
