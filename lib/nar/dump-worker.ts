// Worker half of dumpPath(): produces NAR chunks with blocking calls, straight into the shared
// ring (see ring.ts), and blocks only when the main thread is SLOTS chunks behind.
import { parentPort, workerData } from 'node:worker_threads';
import { CONSUMED, FINISHED, PRODUCED, SLOTS, openRing, slotView } from './ring.js';
import { NAR_CHUNK, narChunks } from './writer.js';

export interface DumpWorkerData {
  root: Uint8Array;
  ring: { control: SharedArrayBuffer; lengths: SharedArrayBuffer; data: SharedArrayBuffer };
}
export interface DumpWorkerError {
  name: string;
  message: string;
  code?: string;
}

const { root, ring: shared } = workerData as DumpWorkerData;
const ring = openRing(shared, NAR_CHUNK);
const ctl = ring.control;
let allocated = 0;

/** The next slot, once the consumer has released it. */
function nextSlot(): Buffer {
  for (;;) {
    const consumed = Atomics.load(ctl, CONSUMED);
    if (allocated - consumed < SLOTS) return slotView(ring, allocated++);
    Atomics.wait(ctl, CONSUMED, consumed);
  }
}

function finish(state: 1 | 2): void {
  Atomics.store(ctl, FINISHED, state);
  Atomics.add(ctl, PRODUCED, 0);
  Atomics.notify(ctl, PRODUCED);
}

try {
  let produced = 0;
  for (const chunk of narChunks(Buffer.from(root), nextSlot)) {
    ring.lengths[produced % SLOTS] = chunk.length;
    produced = Atomics.add(ctl, PRODUCED, 1) + 1;
    Atomics.notify(ctl, PRODUCED);
  }
  finish(1);
} catch (e) {
  const err = e as NodeJS.ErrnoException;
  const msg: DumpWorkerError = { name: err.constructor.name, message: err.message };
  if (err.code) msg.code = err.code;
  parentPort!.postMessage(msg);
  finish(2);
}
