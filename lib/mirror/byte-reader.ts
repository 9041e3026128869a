import { ByteSource, padding } from '../nar/index.js';

/**
 * lib/nar's ByteSource plus the export format's framing: little-endian u64 integers and padded
 * strings, with errors naming the input (a bundle) and the byte offset.
 */
export class ByteReader extends ByteSource {
  /** The next `n` bytes in the pieces they arrive in. */
  pieces(n: number): AsyncGenerator<Buffer> {
    return this.stream(n);
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
    const pad = padding(len);
    if (pad && (await this.read(pad)).some((x) => x !== 0)) throw new Error(`${this.what}: non-zero padding at byte ${this.offset - pad}`);
    return bytes;
  }
}
