import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';

/** Blocks compressed at once: the thread pool's default size, at most 4. */
const WORKERS = Math.max(1, Math.min(4, availableParallelism()));

/**
 * Compresses its input as a series of independent blocks of `blockSize` input bytes (gzip
 * members, zstd frames), several at once off the main thread, written in order. The output does
 * not depend on how the input was chunked or how many ran at once; memory stays at about
 * 2 × WORKERS blocks. Input is copied into the block buffer, so callers may reuse their chunks.
 */
export class BlockCompressStream extends Transform {
  private block: Buffer;
  private filled = 0;
  private submitted = 0;
  private readonly inflight: Promise<Buffer>[] = [];

  constructor(private readonly blockSize: number, private readonly compressBlock: (block: Buffer) => Promise<Buffer>) {
    super();
    this.block = Buffer.allocUnsafe(blockSize);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.absorb(chunk).then(() => done(), done);
  }

  private async absorb(chunk: Buffer): Promise<void> {
    for (let off = 0; off < chunk.length;) {
      const n = Math.min(this.blockSize - this.filled, chunk.length - off);
      chunk.copy(this.block, this.filled, off, off + n);
      this.filled += n;
      off += n;
      if (this.filled === this.blockSize) await this.submit();
    }
  }

  private async submit(): Promise<void> {
    const p = this.compressBlock(this.block.subarray(0, this.filled));
    p.catch(() => undefined); // observed when awaited below; avoids an unhandled rejection meanwhile
    this.inflight.push(p);
    this.submitted++;
    this.block = Buffer.allocUnsafe(this.blockSize);
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
