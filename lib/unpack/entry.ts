import type { SparseMap } from './tar-sparse.js';

/**
 * What a tar header says of a member beyond its name and kind (zip has no such fields). The
 * safe unpacker ignores it; a root file system's unpacker (lib/sandbox) keeps it.
 */
export interface EntryMeta {
  /** Permission bits with setuid/setgid/sticky (no file-type bits). */
  mode: number;
  uid: number;
  gid: number;
  /** Whole seconds since the epoch. */
  mtime: number;
}

export interface DeviceNumbers {
  type: 'char' | 'block' | 'fifo';
  major: number;
  minor: number;
}

/** One archive member, whatever the archive format, as the safe tree writer receives it. */
export type ArchiveEntry = (
  /** With `sparse`, `body` is the stored segments back to back, and the rest are holes. */
  | { kind: 'file'; name: Buffer; executable: boolean; body: AsyncIterable<Buffer>; sparse?: SparseMap }
  | { kind: 'directory'; name: Buffer }
  | { kind: 'symlink'; name: Buffer; target: Buffer }
  /** `target` is the name of an earlier member, relative to the archive's root. */
  | { kind: 'hardlink'; name: Buffer; target: Buffer }
  | { kind: 'special'; name: Buffer; what: 'device nodes' | 'FIFOs' | 'sockets'; device?: DeviceNumbers }
) & { meta?: EntryMeta };

/** Where readers deliver members, one at a time and in archive order. */
export interface EntrySink {
  add(entry: ArchiveEntry): Promise<void>;
}
