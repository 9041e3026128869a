// Worker half of GrowingFileHasher: reads the finished prefix of a file as it grows and hashes it.
// It may be started before there is a file (warmFileHashers): the job comes as the first message.
import { closeSync, openSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { hashFileSync, type HashSelection } from './file-hashes.js';

export interface GrowingFileHasherData {
  path: string;
  size: number;
  executable: boolean;
  /** BigInt64Array: [0] bytes finished so far, [1] non-zero to stop. */
  shared: SharedArrayBuffer;
  /** Byte ranges whose own sha256 is wanted too (e.g. the layers inside an archive). */
  ranges: Array<{ offset: number; size: number }>;
  /** The hashes this worker computes (another may compute the rest). */
  want: HashSelection;
}

parentPort!.once('message', ({ path, size, executable, shared, ranges, want }: GrowingFileHasherData) => {
  const ctl = new BigInt64Array(shared);

  /** How far the writer has got; waits (without spinning) while it has not passed `pos`. */
  function available(pos: number): number {
    for (;;) {
      if (Atomics.load(ctl, 1) !== 0n) process.exit(0);
      const end = Number(Atomics.load(ctl, 0));
      if (end > pos) return end;
      Atomics.wait(ctl, 0, BigInt(end), 1000);
    }
  }

  try {
    const fd = openSync(path, 'r');
    try {
      parentPort!.postMessage(hashFileSync(fd, size, executable, ranges, available, path, want));
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    parentPort!.postMessage({ error: (e as Error).message });
  }
});
