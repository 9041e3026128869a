import { Worker } from 'node:worker_threads';
import { Hash } from '../hash/index.js';
import type { PathHash } from './hash-path.js';
import type { GrowingFileHasherData, GrowingFileHasherResult } from './growing-file-hasher-worker.js';

/**
 * Hashes a regular file of known final size while it is still being written, possibly out of
 * order: the writer says how long the finished prefix is (`advance`), and a worker thread reads
 * that prefix back (from the page cache) into the flat sha256 and the NAR hash. Hashing thus
 * runs on the second core alongside downloading, inflating and writing, instead of after them.
 */
export class GrowingFileHasher {
  private readonly ctl: BigInt64Array;
  private readonly worker: Worker;
  private readonly result: Promise<GrowingFileHasherResult>;
  private end = 0;

  /** `ranges`: parts of the file whose own sha256 is wanted as well (in the same read). */
  constructor(path: string, readonly size: number, opts: { executable?: boolean; ranges?: Array<{ offset: number; size: number }> } = {}) {
    const shared = new SharedArrayBuffer(16);
    this.ctl = new BigInt64Array(shared);
    const data: GrowingFileHasherData = { path, size, executable: opts.executable ?? false, shared, ranges: opts.ranges ?? [] };
    this.worker = new Worker(new URL('./growing-file-hasher-worker.js', import.meta.url), { workerData: data });
    this.result = new Promise((resolve, reject) => {
      this.worker.once('message', (m: GrowingFileHasherResult | { error: string }) => ('error' in m ? reject(new Error(m.error)) : resolve(m)));
      this.worker.once('error', reject);
      this.worker.once('exit', (code) => reject(new Error(`file hashing worker exited (code ${code}) before it finished`)));
    });
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
      const r = await this.result;
      return {
        flat: new Hash('sha256', Buffer.from(r.flat, 'hex')),
        nar: { hash: new Hash('sha256', Buffer.from(r.nar, 'hex')), size: r.narSize },
        rangeDigests: r.rangeDigests.map((hex) => `sha256:${hex}`),
      };
    } finally {
      await this.worker.terminate();
    }
  }

  /** Stops the worker without a result. */
  async abort(): Promise<void> {
    Atomics.store(this.ctl, 1, 1n);
    Atomics.notify(this.ctl, 0);
    await this.worker.terminate();
  }
}
