// A ring of chunk buffers in shared memory between the NAR worker (producer) and the main
// thread (consumer). Chunk i lives in slot i % SLOTS; two counters say how many chunks were
// produced and consumed, so neither side copies or allocates while streaming.
export const SLOTS = 4;
export const PRODUCED = 0;
export const CONSUMED = 1;
export const FINISHED = 2; // 0 running, 1 done, 2 failed (the error follows as a message)

export interface Ring {
  control: Int32Array;
  lengths: Int32Array;
  data: SharedArrayBuffer;
  chunkSize: number;
}

export function createRing(chunkSize: number): { control: SharedArrayBuffer; lengths: SharedArrayBuffer; data: SharedArrayBuffer } {
  return {
    control: new SharedArrayBuffer(3 * 4),
    lengths: new SharedArrayBuffer(SLOTS * 4),
    data: new SharedArrayBuffer(SLOTS * chunkSize),
  };
}

export function openRing(shared: { control: SharedArrayBuffer; lengths: SharedArrayBuffer; data: SharedArrayBuffer }, chunkSize: number): Ring {
  return { control: new Int32Array(shared.control), lengths: new Int32Array(shared.lengths), data: shared.data, chunkSize };
}

export function slotView(ring: Ring, index: number, length = ring.chunkSize): Buffer {
  return Buffer.from(ring.data, (index % SLOTS) * ring.chunkSize, length);
}
