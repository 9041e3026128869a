/** Pulls exact byte counts out of an async stream of chunks, tracking the offset for messages. */
export class ByteSource {
  private readonly it: AsyncIterator<Uint8Array>;
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;
  offset = 0;

  /** `what` names the input in the truncation message (a NAR, a bundle, …). */
  constructor(source: AsyncIterable<Uint8Array>, protected readonly what = 'NAR') {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    while (this.pos >= this.chunk.length) {
      const r = await this.it.next();
      if (r.done) return false;
      this.chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      this.pos = 0;
    }
    return true;
  }

  /** Exactly `n` bytes, or an error saying the input ended early. */
  async read(n: number): Promise<Buffer> {
    if (this.pos + n <= this.chunk.length) {
      const out = this.chunk.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.offset += n;
      return out;
    }
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      if (!(await this.fill())) throw new TruncatedError(this.offset, this.what);
      const take = Math.min(need, this.chunk.length - this.pos);
      parts.push(this.chunk.subarray(this.pos, this.pos + take));
      this.pos += take;
      this.offset += take;
      need -= take;
    }
    return Buffer.concat(parts, n);
  }

  /** Yields the next `n` bytes in the pieces they arrive in, without gathering them. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let need = n;
    while (need > 0) {
      if (!(await this.fill())) throw new TruncatedError(this.offset, this.what);
      const take = Math.min(need, this.chunk.length - this.pos);
      const piece = this.chunk.subarray(this.pos, this.pos + take);
      this.pos += take;
      this.offset += take;
      need -= take;
      yield piece;
    }
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill());
  }
}

export class TruncatedError extends Error {
  constructor(offset: number, what = 'NAR') {
    super(`${what} is truncated: input ended at byte ${offset}`);
  }
}
