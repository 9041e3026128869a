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
