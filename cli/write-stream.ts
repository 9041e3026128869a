import { writeSync } from 'node:fs';
import type { Writable } from 'node:stream';

/**
 * Writes chunks that are only valid until the next one is requested (as dumpPath yields them):
 * each write is waited for before asking for the next chunk, so nothing is copied.
 */
export async function writeChunks(chunks: AsyncIterable<Uint8Array>, out: Writable): Promise<void> {
  for await (const chunk of chunks) {
    await new Promise<void>((resolve, reject) => out.write(chunk, (err) => (err ? reject(err) : resolve())));
  }
}

/**
 * Writes all of `chunk` to `fd` with blocking calls (the fastest way to a file or pipe when
 * there is nothing else to do meanwhile). A descriptor some other process made non-blocking
 * answers EAGAIN when full: wait a moment and go on.
 */
export function writeAllSync(fd: number, chunk: Uint8Array): void {
  for (let off = 0; off < chunk.length;) {
    try {
      off += writeSync(fd, chunk, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(PAUSE, 0, 0, 1);
    }
  }
}
const PAUSE = new Int32Array(new SharedArrayBuffer(4));
