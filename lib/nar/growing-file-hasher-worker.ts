// Worker half of GrowingFileHasher: reads the finished prefix of a file as it grows and hashes it.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { RegularFileNarHasher } from './hash-path.js';

export interface GrowingFileHasherData {
  path: string;
  size: number;
  executable: boolean;
  /** BigInt64Array: [0] bytes finished so far, [1] non-zero to stop. */
  shared: SharedArrayBuffer;
  /** Byte ranges whose own sha256 is wanted too (e.g. the layers inside an archive). */
  ranges: Array<{ offset: number; size: number }>;
}
export interface GrowingFileHasherResult {
  flat: string;
  nar: string;
  narSize: number;
  /** sha256 hex of each requested range, in order. */
  rangeDigests: string[];
}

const { path, size, executable, shared, ranges } = workerData as GrowingFileHasherData;
const ctl = new BigInt64Array(shared);

try {
  const flat = createHash('sha256');
  const nar = new RegularFileNarHasher(size, executable);
  const rangeHashes = ranges.map(() => createHash('sha256'));
  const buf = Buffer.allocUnsafeSlow(1 << 20);
  const fd = openSync(path, 'r');
  try {
    for (let pos = 0; pos < size;) {
      if (Atomics.load(ctl, 1) !== 0n) process.exit(0);
      const end = Number(Atomics.load(ctl, 0));
      if (end <= pos) {
        Atomics.wait(ctl, 0, BigInt(end), 1000);
        continue;
      }
      const n = readSync(fd, buf, 0, Math.min(buf.length, end - pos), pos);
      if (n === 0) throw new Error(`${path}: ended at ${pos} bytes, before the ${end} said to be written`);
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
  } finally {
    closeSync(fd);
  }
  const n = nar.digest();
  const result: GrowingFileHasherResult = { flat: flat.digest('hex'), nar: n.hash.base16, narSize: n.size, rangeDigests: rangeHashes.map((h) => h.digest('hex')) };
  parentPort!.postMessage(result);
} catch (e) {
  parentPort!.postMessage({ error: (e as Error).message });
}
