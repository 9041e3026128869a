import type { Transform } from 'node:stream';
import { createGzip } from 'node:zlib';

/**
 * The image's compression, byte-stable: gzip through zlib at level 6 (pigz's default, which
 * nixpkgs runs as `pigz -nTR`) with zlib's header (no name, mtime 0); zstd at level 3 (the zstd
 * tool's default, nixpkgs' choice) as independent 8 MiB frames, lib/mirror's compressor, whose
 * output does not depend on how the input was chunked or how many threads ran.
 */

export type Compressor = 'none' | 'gz' | 'zstd';

export const GZIP_LEVEL = 6;
export const ZSTD_LEVEL = 3;

export async function compressStream(kind: Compressor): Promise<Transform | undefined> {
  if (kind === 'none') return undefined;
  if (kind === 'gz') return createGzip({ level: GZIP_LEVEL, chunkSize: 512 * 1024 });
  // Loaded on first use: lib/mirror (servers, signing, …) is not needed otherwise.
  const { compressor } = await import('../mirror/index.js');
  return compressor('zstd', ZSTD_LEVEL);
}
