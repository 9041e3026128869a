import type { Transform } from 'node:stream';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { BlockCompressStream } from '../image/index.js';

/**
 * The image's compression, byte-stable. gzip: level 6 (pigz's default; nixpkgs runs
 * `pigz -nTR`) with zlib's header (no name, mtime 0), as a series of gzip members of 4 MiB of
 * input each, compressed on the thread pool several at once (pigz's speed-up; a reader sees one
 * stream: gzip, zlib and Go's reader all join members). zstd: level 3 (the zstd tool's default,
 * nixpkgs' choice) as independent 8 MiB frames, lib/mirror's compressor. Neither output depends
 * on how the input was chunked or how many threads ran.
 */

export type Compressor = 'none' | 'gz' | 'zstd';

export const GZIP_LEVEL = 6;
export const ZSTD_LEVEL = 3;
const GZIP_BLOCK = 4 << 20;
const gzipAsync = promisify(gzip);

export async function compressStream(kind: Compressor): Promise<Transform | undefined> {
  if (kind === 'none') return undefined;
  if (kind === 'gz') return new BlockCompressStream(GZIP_BLOCK, (block) => gzipAsync(block, { level: GZIP_LEVEL }));
  // Loaded on first use: lib/mirror (servers, signing, …) is not needed otherwise.
  const { compressor } = await import('../mirror/index.js');
  return compressor('zstd', ZSTD_LEVEL);
}
