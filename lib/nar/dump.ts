import { lstatSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { DumpWorkerData, DumpWorkerError } from './dump-worker.js';
import { CONSUMED, FINISHED, PRODUCED, createRing, openRing, slotView } from './ring.js';
import { ChangedWhileArchivingError, NAR_CHUNK, UnsupportedFileTypeError, narChunks } from './writer.js';

/** Below this a worker costs more than it saves: serialise on the calling thread. */
const INLINE_LIMIT = 4 * NAR_CHUNK;

/**
 * The NAR of `root` as an async stream of chunks, byte-identical to `nix-store --dump`.
 * Directories and large files are serialised in a worker thread, so reading the files overlaps
 * with whatever the consumer does (hashing, compressing, writing) on this thread.
 *
 * A yielded chunk is valid only until the consumer asks for the next one: its memory is then
 * reused. Consumers that keep chunks must copy them or finish with them first (as writeNar does).
 */
export async function* dumpPath(root: string | Buffer): AsyncGenerator<Buffer> {
  const rootBytes = typeof root === 'string' ? Buffer.from(root) : root;
  const st = lstatSync(rootBytes);
  if (!st.isDirectory() && !(st.isFile() && st.size > INLINE_LIMIT)) {
    yield* narChunks(rootBytes);
    return;
  }
  yield* dumpInWorker(rootBytes);
}

async function* dumpInWorker(root: Buffer): AsyncGenerator<Buffer> {
  const shared = createRing(NAR_CHUNK);
  const ring = openRing(shared, NAR_CHUNK);
  const ctl = ring.control;
  const data: DumpWorkerData = { root, ring: shared };
  const worker = new Worker(new URL('./dump-worker.js', import.meta.url), { workerData: data });
  const failure = new Promise<Error>((resolve) => {
    worker.once('message', (m: DumpWorkerError) => resolve(rebuildError(m)));
    worker.once('error', resolve);
  });
  failure.catch(() => undefined);
  worker.once('exit', () => {
    // Wakes the consumer if the worker died without saying so.
    if (Atomics.load(ctl, FINISHED) === 0) {
      Atomics.store(ctl, FINISHED, 2);
      Atomics.notify(ctl, PRODUCED);
    }
  });
  try {
    for (let next = 0; ; next++) {
      for (;;) {
        const produced = Atomics.load(ctl, PRODUCED);
        if (produced > next) break;
        const state = Atomics.load(ctl, FINISHED);
        if (state === 1) return;
        if (state === 2) throw await Promise.race([failure, new Promise<Error>((r) => setTimeout(() => r(new Error('NAR worker exited unexpectedly')), 1000))]);
        const w = Atomics.waitAsync(ctl, PRODUCED, produced);
        if (w.async) await w.value;
      }
      yield slotView(ring, next, ring.lengths[next % ring.lengths.length]!);
      Atomics.add(ctl, CONSUMED, 1);
      Atomics.notify(ctl, CONSUMED);
    }
  } finally {
    await worker.terminate();
  }
}

function rebuildError(m: DumpWorkerError): Error {
  const E = m.name === 'UnsupportedFileTypeError' ? UnsupportedFileTypeError
    : m.name === 'ChangedWhileArchivingError' ? ChangedWhileArchivingError : Error;
  const err: NodeJS.ErrnoException = new E(m.message);
  if (m.code) err.code = m.code;
  return err;
}
