import { CorruptArchiveError } from './errors.js';

/**
 * Pulls exact byte counts from a stream of chunks, holding no more than one chunk beyond what
 * was asked for: headers are read whole, file bodies pass through as slices of the chunks.
 */
export class ByteReader {
  private readonly it: AsyncIterator<Buffer>;
  private chunk: Buffer = Buffer.alloc(0);
  private ended = false;
  /** Bytes consumed so far. */
  position = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Ensures some bytes are buffered; false at the end of the stream. */
  private async more(): Promise<boolean> {
    while (this.chunk.length === 0) {
      if (this.ended) return false;
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else this.chunk = r.value;
    }
    return true;
  }

  private truncated(): CorruptArchiveError {
    return new CorruptArchiveError(`the archive is truncated (it ends after ${this.position} bytes of tar data)`);
  }

  /** Exactly `n` bytes, or null if the stream ended before the first of them. */
  async read(n: number): Promise<Buffer | null> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      if (!(await this.more())) {
        if (got === 0) return null;
        throw this.truncated();
      }
      const piece = this.take1(n - got);
      parts.push(piece);
      got += piece.length;
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, n);
  }

  /** The next `n` bytes as they arrive; the stream ending early is an error. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!(await this.more())) throw this.truncated();
      const piece = this.take1(left);
      left -= piece.length;
      yield piece;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const piece of this.stream(n)) void piece;
  }

  /** Reads to the end, so that a decoder still checks what follows the tar data. */
  async drain(): Promise<void> {
    while (await this.more()) this.take1(this.chunk.length);
  }

  private take1(max: number): Buffer {
    const piece = this.chunk.length <= max ? this.chunk : this.chunk.subarray(0, max);
    this.chunk = this.chunk.subarray(piece.length);
    this.position += piece.length;
    return piece;
  }
}
