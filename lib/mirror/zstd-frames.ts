// Fast zstd decoding: a stream of independent frames (what our compressor writes) is cut at
// frame boundaries, read from the block headers without decoding, and each small frame is
// decoded natively on the thread pool, several at once. A frame whose output could exceed
// MAX_BLOCKS × 128 KiB (a whole NAR in one frame, as Nix writes) switches the rest of the stream
// to fzstd's streaming decoder, so memory stays bounded either way.
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { Decompress } from 'fzstd';
import { onFirstUse } from './on-first-use.js';

/** The native zstd codec (@mongodb-js/zstd), shared with the compressor. */
export const zstdNative = onFirstUse<typeof import('@mongodb-js/zstd')>('@mongodb-js/zstd');

const MAGIC = 0xfd2fb528;
const MAX_BLOCKS = 128; // each block yields at most 128 KiB: a frame here decodes to ≤ 16 MiB
const WORKERS = Math.max(1, Math.min(4, availableParallelism()));

export class ZstdDecompressStream extends Transform {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Offset (within the buffered frame) of the next field to read; -1 before the header is read. */
  private cursor = -1;
  private blocks = 0;
  private checksum = false;
  private readonly inflight: Promise<Buffer>[] = [];
  private fallback: Decompress | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.absorb(chunk).then(() => done(), (e: unknown) => done(wrap(e)));
  }

  override _flush(done: TransformCallback): void {
    (async () => {
      if (this.fallback) {
        this.fallback.push(new Uint8Array(0), true);
        return;
      }
      if (this.buffered > 0) throw new Error('input ends inside a frame (truncated)');
      while (this.inflight.length) this.push(await this.inflight.shift()!);
    })().then(() => done(), (e: unknown) => done(wrap(e)));
  }

  private async absorb(chunk: Buffer): Promise<void> {
    if (this.fallback) return void this.fallback.push(chunk);
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      const end = this.frameEnd();
      if (end === 'more') return;
      if (end === 'stream') return this.switchToStreaming();
      await this.submit(end);
    }
  }

  /** `n` bytes at `at` within the buffered data, or undefined if not all there yet. */
  private peek(at: number, n: number): Buffer | undefined {
    if (at + n > this.buffered) return undefined;
    const out = Buffer.alloc(n);
    let skip = at;
    let got = 0;
    for (const c of this.chunks) {
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      const take = Math.min(c.length - skip, n - got);
      c.copy(out, got, skip, skip + take);
      got += take;
      skip = 0;
      if (got === n) break;
    }
    return out;
  }

  /** Where the buffered frame ends once known; 'more' to wait for input; 'stream' to fall back. */
  private frameEnd(): number | 'more' | 'stream' {
    if (this.cursor < 0) {
      const head = this.peek(0, 5);
      if (!head) return 'more';
      const magic = head.readUInt32LE(0);
      if ((magic & 0xfffffff0) === 0x184d2a50) {
        const size = this.peek(4, 4);
        if (!size) return 'more';
        this.cursor = 8 + size.readUInt32LE(0); // skippable frame: no blocks to walk
        this.blocks = -1;
      } else {
        if (magic !== MAGIC) throw new Error('not zstd data (bad frame magic)');
        const fhd = head[4]!;
        const fcsFlag = fhd >> 6;
        const single = (fhd >> 5) & 1;
        if (fhd & 0x08) throw new Error('reserved bit set in a frame header');
        this.checksum = Boolean((fhd >> 2) & 1);
        const fcsBytes = [single ? 1 : 0, 2, 4, 8][fcsFlag]!;
        this.cursor = 5 + (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]! + fcsBytes;
        this.blocks = 0;
      }
    }
    while (this.blocks >= 0) {
      const h = this.peek(this.cursor, 3);
      if (!h) return 'more';
      const v = h[0]! | (h[1]! << 8) | (h[2]! << 16);
      const type = (v >> 1) & 3;
      if (type === 3) throw new Error('reserved block type');
      this.cursor += 3 + (type === 1 ? 1 : v >> 3);
      if (++this.blocks > MAX_BLOCKS) return 'stream';
      if (v & 1) {
        if (this.checksum) this.cursor += 4;
        this.blocks = -2; // frame complete
      }
    }
    return this.cursor <= this.buffered ? this.cursor : 'more';
  }

  /** Hands the first `end` buffered bytes (one frame) to a native decoder; keeps the rest. */
  private async submit(end: number): Promise<void> {
    const all = Buffer.concat(this.chunks, this.buffered);
    const frame = all.subarray(0, end);
    const rest = all.subarray(end);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    const skippable = this.blocks === -1;
    this.cursor = -1;
    this.blocks = 0;
    if (skippable) return;
    const p = zstdNative().decompress(frame);
    p.catch(() => undefined); // observed when awaited below
    this.inflight.push(p);
    while (this.inflight.length >= WORKERS) this.push(await this.inflight.shift()!);
  }

  /** From the current frame on, decode with fzstd, after everything decoded so far is out. */
  private async switchToStreaming(): Promise<void> {
    while (this.inflight.length) this.push(await this.inflight.shift()!);
    this.fallback = new Decompress((chunk) => {
      if (chunk.length) this.push(Buffer.from(chunk)); // fzstd reuses its window: copy
    });
    const pending = this.chunks;
    this.chunks = [];
    this.buffered = 0;
    for (const c of pending) this.fallback.push(c);
  }
}

function wrap(e: unknown): Error {
  return new Error(`invalid zstd data: ${(e as Error).message}`);
}
