// The part of lzma-native (which ships no types) that lib/unpack uses.
declare module 'lzma-native' {
  import type { Transform } from 'node:stream';

  export interface DecompressorOptions {
    /** Bytes per output chunk (default 64 KiB). */
    bufsize?: number;
    /** Decode on the main thread instead of libuv's pool. */
    synchronous?: boolean;
    memlimit?: number;
  }

  /** A Transform from .xz (or .lzma) bytes to the decoded bytes. */
  export function createDecompressor(options?: DecompressorOptions): Transform;
}
