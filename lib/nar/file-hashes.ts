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

/** Which of the hashes to compute: lets two threads share the work of one file. */
export interface HashSelection {
  flat: boolean;
  nar: boolean;
  /** Indices of the ranges whose digest this thread computes. */
  ranges: readonly number[];
}

/** Every hash of a file with `rangeCount` ranges, for one thread. */
export function allHashes(rangeCount: number): HashSelection {
  return { flat: true, nar: true, ranges: Array.from({ length: rangeCount }, (_, i) => i) };
}

/**
 * The hashes split between two threads so that each reads about as many bytes into a hash: the
 * flat hash on one and the NAR hash on the other (each a pass over the whole file that cannot be
 * split), then the ranges, largest first, to whichever has less to do.
 */
export function splitHashes(size: number, ranges: ReadonlyArray<{ size: number }>): [HashSelection, HashSelection] {
  const load = [size, size];
  const mine: [number[], number[]] = [[], []];
  const order = ranges.map((_, i) => i).sort((a, b) => ranges[b]!.size - ranges[a]!.size);
  for (const i of order) {
    const t = load[0]! <= load[1]! ? 0 : 1;
    mine[t].push(i);
    load[t] += ranges[i]!.size;
  }
  return [{ flat: true, nar: false, ranges: mine[0].sort((a, b) => a - b) }, { flat: false, nar: true, ranges: mine[1].sort((a, b) => a - b) }];
}

/** Combines the results of threads that computed different selections of the same file. */
export function mergeFileHashes(parts: ReadonlyArray<{ want: HashSelection; result: FileHashes }>): FileHashes {
  const flat = parts.find((p) => p.want.flat)!.result;
  const nar = parts.find((p) => p.want.nar)!.result;
  const rangeDigests: string[] = [];
  for (const { want, result } of parts) want.ranges.forEach((i, k) => (rangeDigests[i] = result.rangeDigests[k]!));
  return { flat: flat.flat, nar: nar.nar, narSize: nar.narSize, rangeDigests };
}

/**
 * Reads a regular file of `size` bytes from the start, in one pass, into its flat sha256, its NAR
 * hash and the sha256 of each of `ranges` (those `want` selects; by default all, and the
 * digests come back in the order of `want.ranges`). `available(pos)` says how far it may read (it may block
 * until more is written: see GrowingFileHasher).
 */
export function hashFileSync(
  fd: number, size: number, executable: boolean, ranges: ReadonlyArray<{ offset: number; size: number }>, available: (pos: number) => number,
  what = 'file', want: HashSelection = allHashes(ranges.length),
): FileHashes {
  const flat = want.flat ? createHash('sha256') : undefined;
  const nar = want.nar ? new RegularFileNarHasher(size, executable) : undefined;
  const mine = want.ranges.map((i) => ({ ...ranges[i]!, hash: createHash('sha256') }));
  const buf = Buffer.allocUnsafeSlow(Math.max(1, Math.min(1 << 20, size)));
  for (let pos = 0; pos < size;) {
    const end = available(pos);
    if (end <= pos) continue;
    const n = readSync(fd, buf, 0, Math.min(buf.length, end - pos), pos);
    if (n === 0) throw new Error(`${what}: ended at ${pos} bytes, before the ${end} said to be written`);
    const chunk = buf.subarray(0, n);
    flat?.update(chunk);
    nar?.update(chunk);
    for (const r of mine) {
      const from = Math.max(pos, r.offset);
      const to = Math.min(pos + n, r.offset + r.size);
      if (from < to) r.hash.update(chunk.subarray(from - pos, to - pos));
    }
    pos += n;
  }
  const n = nar?.digest();
  return { flat: flat?.digest('hex') ?? '', nar: n?.hash.base16 ?? '', narSize: n?.size ?? 0, rangeDigests: mine.map((r) => r.hash.digest('hex')) };
}
