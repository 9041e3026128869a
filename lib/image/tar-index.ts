import type { FileHandle } from 'node:fs/promises';
import { checksumOk, isZeroBlock, parseHeader, parsePax, type PaxRecords } from '../unpack/index.js';

/**
 * The members of an uncompressed tar stored in a file (a docker-archive, or a layer inside one),
 * read by header only: file data is jumped over, never read, so listing a 1 GB layer costs its
 * headers. pax ('x') and GNU long-name ('L', 'K') headers apply to the next member, as GNU tar
 * reads them; global pax headers are ignored.
 */

const BLOCK = 512;
const WINDOW = 1 << 20;
const META_MAX = 1 << 20;

export interface TarMember {
  name: string;
  /** The typeflag character ('0' for regular files, also when stored as NUL). */
  type: string;
  mode: number;
  size: number;
  linkname: string;
  /** Absolute offset of the member's data in the file. */
  dataOffset: number;
}

/** Positional reads through a 1 MiB window, so that runs of small headers cost one read. */
class WindowReader {
  private buf = Buffer.alloc(0);
  private at = 0;

  constructor(private readonly fh: FileHandle, private readonly end: number) {}

  async read(offset: number, n: number): Promise<Buffer | null> {
    if (offset + n > this.end) return null;
    if (offset < this.at || offset + n > this.at + this.buf.length) {
      const want = Math.min(Math.max(n, WINDOW), this.end - offset);
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await this.fh.read(buf, 0, want, offset);
      this.buf = buf.subarray(0, bytesRead);
      this.at = offset;
      if (bytesRead < n) return null;
    }
    return this.buf.subarray(offset - this.at, offset - this.at + n);
  }
}

const pad = (n: number): number => (BLOCK - (n % BLOCK)) % BLOCK;
const cut = (b: Buffer): Buffer => {
  const nul = b.indexOf(0);
  return nul < 0 ? b : b.subarray(0, nul);
};

/**
 * Yields the members of the tar occupying [start, start + length) of the open file. `where`
 * names the tar in errors ("base image layer 3").
 */
export async function* tarMembers(fh: FileHandle, start: number, length: number, where: string): AsyncGenerator<TarMember> {
  const end = start + length;
  const r = new WindowReader(fh, end);
  let off = start;
  let pax: PaxRecords = {};
  let longName: Buffer | undefined;
  let longLink: Buffer | undefined;
  for (;;) {
    const block = await r.read(off, BLOCK);
    if (block === null || isZeroBlock(block)) return;
    if (!checksumOk(block)) throw new Error(`${where}: corrupt tar header at byte ${off - start} (bad checksum)`);
    const h = parseHeader(Buffer.from(block));
    const dataOffset = off + BLOCK;
    const meta = async (): Promise<Buffer> => {
      if (h.size > META_MAX) throw new Error(`${where}: tar extended header at byte ${off - start} is too large`);
      const data = await r.read(dataOffset, h.size);
      if (data === null) throw new Error(`${where}: the tar is truncated`);
      return Buffer.from(data);
    };
    const size = h.type === 'x' || h.type === 'X' || h.type === 'L' || h.type === 'K' || h.type === 'g' ? h.size : (pax.size ?? h.size);
    const next = dataOffset + size + pad(size);
    switch (h.type) {
      case 'x':
      case 'X':
        pax = parsePax(await meta(), pax);
        off = next;
        continue;
      case 'L':
        longName = cut(await meta());
        off = next;
        continue;
      case 'K':
        longLink = cut(await meta());
        off = next;
        continue;
      case 'g':
      case 'V':
        off = next;
        continue;
    }
    const name = (pax.path ?? longName ?? h.name).toString('utf8');
    const linkname = (pax.linkpath ?? longLink ?? h.linkname).toString('utf8');
    pax = {};
    longName = undefined;
    longLink = undefined;
    // Only regular files (and GNU dumpdirs) carry data.
    const carries = h.type === '0' || h.type === '7' || h.type === 'D' || !'123456'.includes(h.type);
    const dataSize = carries ? size : 0;
    if (dataOffset + dataSize > end) throw new Error(`${where}: the tar is truncated (member ${name})`);
    yield { name, type: h.type, mode: h.mode, size: dataSize, linkname, dataOffset };
    off = dataOffset + dataSize + pad(dataSize);
  }
}
