import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import { RegularFileNarHasher } from './hash-path.js';

export interface FileHashes {
  /** Hex sha256 of the bytes. */
  flat: string;
  /** Hex sha256 of the NAR of the file. */
  nar: string;
  narSize: number;
  /** Hex sha256 of each requested range, in order. */
  rangeDigests: string[];
}

/**
 * Reads a regular file of `size` bytes from the start, in one pass, into its flat sha256, its NAR
 * hash and the sha256 of each of `ranges`. `available(pos)` says how far it may read (it may block
 * until more is written: see GrowingFileHasher).
 */
export function hashFileSync(
  fd: number, size: number, executable: boolean, ranges: ReadonlyArray<{ offset: number; size: number }>, available: (pos: number) => number,
  what = 'file',
): FileHashes {
  const flat = createHash('sha256');
  const nar = new RegularFileNarHasher(size, executable);
  const rangeHashes = ranges.map(() => createHash('sha256'));
  const buf = Buffer.allocUnsafeSlow(Math.max(1, Math.min(1 << 20, size)));
  for (let pos = 0; pos < size;) {
    const end = available(pos);
    if (end <= pos) continue;
    const n = readSync(fd, buf, 0, Math.min(buf.length, end - pos), pos);
    if (n === 0) throw new Error(`${what}: ended at ${pos} bytes, before the ${end} said to be written`);
    const chunk = buf.subarray(0, n);
    flat.update(chunk);
    nar.update(chunk);
    ranges.forEach((r, i) => {
      const from = Math.max(pos, r.offset);
      const to = Math.min(pos + n, r.offset + r.size);
      if (from < to) rangeHashes[i]!.update(chunk.subarray(from - pos, to - pos));
    });
    pos += n;
  }
  const n = nar.digest();
  return { flat: flat.digest('hex'), nar: n.hash.base16, narSize: n.size, rangeDigests: rangeHashes.map((h) => h.digest('hex')) };
}
