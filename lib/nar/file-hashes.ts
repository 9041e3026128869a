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

/** Which of the hashes to compute (all by default): lets two threads share the work of one file. */
export interface HashSelection {
  flat: boolean;
  nar: boolean;
  ranges: boolean;
}

export const ALL_HASHES: HashSelection = { flat: true, nar: true, ranges: true };

/** Combines the results of threads that computed different selections of the same file. */
export function mergeFileHashes(parts: ReadonlyArray<{ want: HashSelection; result: FileHashes }>): FileHashes {
  const pick = <K extends keyof HashSelection>(k: K) => parts.find((p) => p.want[k])!.result;
  const nar = pick('nar');
  return { flat: pick('flat').flat, nar: nar.nar, narSize: nar.narSize, rangeDigests: pick('ranges').rangeDigests };
}

/**
 * Reads a regular file of `size` bytes from the start, in one pass, into its flat sha256, its NAR
 * hash and the sha256 of each of `ranges`. `available(pos)` says how far it may read (it may block
 * until more is written: see GrowingFileHasher).
 */
export function hashFileSync(
  fd: number, size: number, executable: boolean, ranges: ReadonlyArray<{ offset: number; size: number }>, available: (pos: number) => number,
  what = 'file', want: HashSelection = ALL_HASHES,
): FileHashes {
  const flat = want.flat ? createHash('sha256') : undefined;
  const nar = want.nar ? new RegularFileNarHasher(size, executable) : undefined;
  const rangeHashes = want.ranges ? ranges.map(() => createHash('sha256')) : [];
  const buf = Buffer.allocUnsafeSlow(Math.max(1, Math.min(1 << 20, size)));
  for (let pos = 0; pos < size;) {
    const end = available(pos);
    if (end <= pos) continue;
    const n = readSync(fd, buf, 0, Math.min(buf.length, end - pos), pos);
    if (n === 0) throw new Error(`${what}: ended at ${pos} bytes, before the ${end} said to be written`);
    const chunk = buf.subarray(0, n);
    flat?.update(chunk);
    nar?.update(chunk);
    if (want.ranges) ranges.forEach((r, i) => {
      const from = Math.max(pos, r.offset);
      const to = Math.min(pos + n, r.offset + r.size);
      if (from < to) rangeHashes[i]!.update(chunk.subarray(from - pos, to - pos));
    });
    pos += n;
  }
  const n = nar?.digest();
  return { flat: flat?.digest('hex') ?? '', nar: n?.hash.base16 ?? '', narSize: n?.size ?? 0, rangeDigests: rangeHashes.map((h) => h.digest('hex')) };
}
