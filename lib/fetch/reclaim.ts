/**
 * Keeps a download's memory flat. Every socket read hands us a fresh 64 KiB buffer whose memory
 * lives outside the JavaScript heap; V8 frees the dead ones only when a scavenge runs, and
 * scavenges are paced by JavaScript allocations, which a download barely makes. Left alone, tens
 * of MiB of already-written chunks wait for a collection (a 500 MB fetch peaked at 125 MiB).
 * A minor collection every few MiB received frees them at a cost of a fraction of a millisecond.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const EVERY_BYTES = 4 << 20;

type MinorGc = (options: { type: 'minor' }) => void;
let collect: MinorGc | undefined;
let sinceLast = 0;

/** Counts `bytes` just received and runs a minor collection once enough have arrived. */
export function reclaimAfter(bytes: number): void {
  sinceLast += bytes;
  if (sinceLast < EVERY_BYTES) return;
  sinceLast = 0;
  if (!collect) {
    // A context created after --expose-gc carries a `gc` function for this isolate.
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as MinorGc;
  }
  collect({ type: 'minor' });
}
