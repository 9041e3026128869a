/** Exact reads from an async byte stream, with the offset kept for messages (bundles). */
export class ByteReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;
  offset = 0;

  constructor(source: AsyncIterable<Uint8Array>, private readonly what: string) {
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

  private truncated(): Error {
    return new Error(`${this.what} is truncated: it ends at byte ${this.offset}`);
  }

  /** Exactly `n` bytes (a view when they sit in one chunk). */
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
      if (!(await this.fill())) throw this.truncated();
      const take = Math.min(need, this.chunk.length - this.pos);
      parts.push(this.chunk.subarray(this.pos, this.pos + take));
      this.pos += take;
      this.offset += take;
      need -= take;
    }
    return Buffer.concat(parts, n);
  }

  /** The next `n` bytes in the pieces they arrive in. */
  async *pieces(n: number): AsyncGenerator<Buffer> {
    let need = n;
    while (need > 0) {
      if (!(await this.fill())) throw this.truncated();
      const take = Math.min(need, this.chunk.length - this.pos);
      const piece = this.chunk.subarray(this.pos, this.pos + take);
      this.pos += take;
      this.offset += take;
      need -= take;
      yield piece;
    }
  }

  /** A little-endian u64 as a number (NAR and export-format integers). */
  async readInt(): Promise<number> {
    const at = this.offset;
    const b = await this.read(8);
    const hi = b.readUInt32LE(4);
    if (hi >= 0x200000) throw new Error(`${this.what}: integer at byte ${at} is too large`);
    return hi * 0x100000000 + b.readUInt32LE(0);
  }

  /** A padded string of at most `max` bytes. */
  async readStr(max: number): Promise<Buffer> {
    const at = this.offset;
    const len = await this.readInt();
    if (len > max) throw new Error(`${this.what}: string at byte ${at} is ${len} bytes long (at most ${max} allowed)`);
    const bytes = Buffer.from(await this.read(len));
    const pad = (8 - (len % 8)) % 8;
    if (pad && (await this.read(pad)).some((x) => x !== 0)) throw new Error(`${this.what}: non-zero padding at byte ${this.offset - pad}`);
    return bytes;
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill());
  }
}
