import { closeSync, openSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { Hash } from '../hash/index.js';
import { allHashes, hashFileSync, mergeFileHashes, splitHashes, type FileHashes, type HashSelection } from './file-hashes.js';
import type { PathHash } from './hash-path.js';
import type { GrowingFileHasherData } from './growing-file-hasher-worker.js';

/** Below this a worker (a V8 isolate: ~20 MB and ~20 ms) costs more than it saves: hash at the end. */
const WORKER_MIN_SIZE = 16 << 20;

/** Workers started ahead of need by warmFileHashers(), idle until given a file. */
const spares: Worker[] = [];

function spawnWorker(): Worker {
  const worker = new Worker(new URL('./growing-file-hasher-worker.js', import.meta.url));
  // A spare that fails before it is used must not crash the process; whoever takes it listens too.
  worker.on('error', () => undefined);
  return worker;
}

/**
 * Starts `count` hashing workers now, so that GrowingFileHashers created later find them ready.
 * A worker takes ~50 ms to boot while the machine is busy; a caller about to spend about as long
 * on the network (resolving an image) overlaps the two. Idle spares never keep the process alive.
 */
export function warmFileHashers(count: number): void {
  while (spares.length < count) {
    const worker = spawnWorker();
    worker.unref();
    spares.push(worker);
  }
}

function takeWorker(): Worker {
  for (let w = spares.pop(); w; w = spares.pop()) {
    if (w.threadId === -1) continue; // exited meanwhile
    w.ref();
    return w;
  }
  return spawnWorker();
}

/**
 * Hashes a regular file of known final size while it is still being written, possibly out of
 * order: the writer says how long the finished prefix is (`advance`), and a worker thread reads
 * that prefix back (from the page cache) into the flat sha256 and the NAR hash. Hashing thus
 * runs on the second core alongside downloading, inflating and writing, instead of after them.
 * A small file is simply read back and hashed on this thread by finish().
 *
 * With several ranges (an image archive: flat sha256, NAR hash and every layer's diff_id, three
 * hashes of each byte) two workers share the work, each one of the file's hashes and about half
 * of the layers (splitHashes): with five layers inflated at once, one thread fell ~0.25 s behind
 * the writers of a 280 MB archive and finished alone. With one layer, its single inflate stream
 * is the long pole, one hashing thread keeps up, and a second only takes CPU from the inflate
 * (measured: slower).
 */
export class GrowingFileHasher {
  private readonly ctl: BigInt64Array;
  private readonly workers: Worker[] = [];
  private readonly result: Promise<FileHashes> | undefined;
  private end = 0;

  /** `ranges`: parts of the file whose own sha256 is wanted as well (in the same read). */
  constructor(private readonly path: string, readonly size: number, private readonly opts: { executable?: boolean; ranges?: Array<{ offset: number; size: number }> } = {}) {
    const shared = new SharedArrayBuffer(16);
    this.ctl = new BigInt64Array(shared);
    if (size < WORKER_MIN_SIZE) return;
    const ranges = opts.ranges ?? [];
    const split: HashSelection[] = ranges.length > 1 ? splitHashes(size, ranges) : [allHashes(ranges.length)];
    const parts = split.map((want) => {
      const job: GrowingFileHasherData = { path, size, executable: opts.executable ?? false, shared, ranges, want };
      const worker = takeWorker();
      this.workers.push(worker);
      const done = new Promise<{ want: HashSelection; result: FileHashes }>((resolve, reject) => {
        worker.once('message', (m: FileHashes | { error: string }) => ('error' in m ? reject(new Error(m.error)) : resolve({ want, result: m })));
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`file hashing worker exited (code ${code}) before it finished`)));
      });
      worker.postMessage(job);
      return done;
    });
    this.result = Promise.all(parts).then(mergeFileHashes);
    this.result.catch(() => undefined);
  }

  /** Bytes [0, end) are written for good. */
  advance(end: number): void {
    if (end <= this.end) return;
    this.end = Math.min(end, this.size);
    Atomics.store(this.ctl, 0, BigInt(this.end));
    Atomics.notify(this.ctl, 0);
  }

  /** The hashes, once the whole file has been declared written. */
  async finish(): Promise<{ flat: Hash; nar: PathHash; rangeDigests: string[] }> {
    if (this.end !== this.size) throw new Error(`file hashing finished at ${this.end} of ${this.size} bytes`);
    try {
      const r = this.result ? await this.result : this.hashHere();
      return {
        flat: new Hash('sha256', Buffer.from(r.flat, 'hex')),
        nar: { hash: new Hash('sha256', Buffer.from(r.nar, 'hex')), size: r.narSize },
        rangeDigests: r.rangeDigests.map((hex) => `sha256:${hex}`),
      };
    } finally {
      await this.terminate();
    }
  }

  /** Stops the worker without a result. */
  async abort(): Promise<void> {
    Atomics.store(this.ctl, 1, 1n);
    Atomics.notify(this.ctl, 0);
    await this.terminate();
  }

  private async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private hashHere(): FileHashes {
    const fd = openSync(this.path, 'r');
    try {
      return hashFileSync(fd, this.size, this.opts.executable ?? false, this.opts.ranges ?? [], () => this.size, this.path);
    } finally {
      closeSync(fd);
    }
  }
}
