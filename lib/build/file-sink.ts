import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

const QUEUE = 4 << 20;
const SLAB = 8 << 20;

/**
 * A file's sink for the tar writers: hashes what it is given (when asked) and writes it with one
 * writev per batch (up to 4 MiB queued), so thousands of small entries cost few system calls.
 * File contents can be read straight into the sink's own slab (region()): a layer of 150 MB
 * then allocates no per-file buffers the garbage collector would let pile up.
 */
export class FileSink extends Writable {
  readonly hash: Hash | undefined;
  private readonly slab = Buffer.allocUnsafe(SLAB);
  private slabUsed = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly fh: FileHandle, opts: { hash?: boolean } = {}) {
    super({ highWaterMark: QUEUE });
    this.hash = opts.hash ? createHash('sha256') : undefined;
  }

  /** The largest region() that may be asked for. */
  static readonly MAX_REGION = SLAB / 4;

  /**
   * `n` bytes of the slab to fill and then write to this sink (as one chunk, or in order as
   * several). When the slab is used up, waits until everything queued is written, then starts
   * over: a region is never handed out while an earlier write still points into it.
   */
  async region(n: number): Promise<Buffer> {
    if (n > FileSink.MAX_REGION) throw new Error(`internal: region of ${n} bytes asked for`);
    if (this.slabUsed + n > SLAB) {
      await this.idle();
      this.slabUsed = 0;
    }
    const r = this.slab.subarray(this.slabUsed, this.slabUsed + n);
    this.slabUsed += n;
    return r;
  }

  private idle(): Promise<void> {
    if (this.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  override _writev(chunks: { chunk: Buffer }[], done: (error?: Error | null) => void): void {
    const bufs = chunks.map((c) => c.chunk);
    if (this.hash) for (const b of bufs) this.hash.update(b);
    writeAll(this.fh, bufs).then(() => {
      done();
      if (this.writableLength === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }, done);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (error?: Error | null) => void): void {
    this._writev([{ chunk }], done);
  }

  /** Ends the stream and waits until everything is written. */
  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

async function writeAll(fh: FileHandle, bufs: Buffer[]): Promise<void> {
  let pending = bufs;
  while (pending.length) {
    let { bytesWritten } = await fh.writev(pending);
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (bytesWritten >= b.length) bytesWritten -= b.length;
      else {
        rest.push(bytesWritten ? b.subarray(bytesWritten) : b);
        bytesWritten = 0;
      }
    }
    pending = rest;
  }
}
