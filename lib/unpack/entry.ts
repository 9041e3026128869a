import type { SparseMap } from './tar-sparse.js';

/** One archive member, whatever the archive format, as the safe tree writer receives it. */
export type ArchiveEntry =
  /** With `sparse`, `body` is the stored segments back to back, and the rest are holes. */
  | { kind: 'file'; name: Buffer; executable: boolean; body: AsyncIterable<Buffer>; sparse?: SparseMap }
  | { kind: 'directory'; name: Buffer }
  | { kind: 'symlink'; name: Buffer; target: Buffer }
  /** `target` is the name of an earlier member, relative to the archive's root. */
  | { kind: 'hardlink'; name: Buffer; target: Buffer }
  | { kind: 'special'; name: Buffer; what: 'device nodes' | 'FIFOs' | 'sockets' };

/** Where readers deliver members, one at a time and in archive order. */
export interface EntrySink {
  add(entry: ArchiveEntry): Promise<void>;
}
