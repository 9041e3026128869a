import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';

/**
 * The image's compression, byte-stable. gzip: level 6 (pigz's default; nixpkgs runs
 * `pigz -nTR`) with zlib's header (no name, mtime 0), as a series of gzip members of 4 MiB of
 * input each, compressed on the thread pool several at once (pigz's speed-up; a reader sees one
 * stream: gzip, zlib and Go's reader all join members). zstd: level 3 (the zstd tool's default,
 * nixpkgs' choice) as independent 8 MiB frames, lib/mirror's compressor. Neither output depends
 * on how the input was chunked or how many threads ran.
 */

export type Compressor = 'none' | 'gz' | 'zstd';

export const GZIP_LEVEL = 6;
export const ZSTD_LEVEL = 3;
const GZIP_BLOCK = 4 << 20;
const WORKERS = Math.max(1, Math.min(4, availableParallelism()));
const gzipAsync = promisify(gzip);

class GzipMembersStream extends Transform {
  private block = Buffer.allocUnsafe(GZIP_BLOCK);
  private filled = 0;
  private submitted = 0;
  private readonly inflight: Promise<Buffer>[] = [];

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.absorb(chunk).then(() => done(), done);
  }

  private async absorb(chunk: Buffer): Promise<void> {
    for (let off = 0; off < chunk.length;) {
      const n = Math.min(GZIP_BLOCK - this.filled, chunk.length - off);
      chunk.copy(this.block, this.filled, off, off + n);
      this.filled += n;
      off += n;
      if (this.filled === GZIP_BLOCK) await this.submit();
    }
  }

  private async submit(): Promise<void> {
    const p = gzipAsync(this.block.subarray(0, this.filled), { level: GZIP_LEVEL });
    p.catch(() => undefined); // observed when awaited below
    this.inflight.push(p);
    this.submitted++;
    this.block = Buffer.allocUnsafe(GZIP_BLOCK);
    this.filled = 0;
    while (this.inflight.length >= WORKERS) this.push(await this.inflight.shift()!);
  }

  override _flush(done: TransformCallback): void {
    (async () => {
      if (this.filled > 0 || this.submitted === 0) await this.submit();
      while (this.inflight.length) this.push(await this.inflight.shift()!);
    })().then(() => done(), done);
  }
}

export async function compressStream(kind: Compressor): Promise<Transform | undefined> {
  if (kind === 'none') return undefined;
  if (kind === 'gz') return new GzipMembersStream();
  // Loaded on first use: lib/mirror (servers, signing, …) is not needed otherwise.
  const { compressor } = await import('../mirror/index.js');
  return compressor('zstd', ZSTD_LEVEL);
}
