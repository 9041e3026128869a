import { open } from 'node:fs/promises';
import { looksLikeTar, BLOCK } from './tar-header.js';

export type ArchiveFormat = 'tar' | 'tar.gz' | 'tar.xz' | 'tar.zst' | 'zip';

/** What the first bytes say; 'tar.bz2' is recognised only to be refused clearly. */
export type Detected = ArchiveFormat | 'tar.bz2' | 'unknown';

const startsWith = (head: Uint8Array, ...sig: number[]): boolean => head.length >= sig.length && sig.every((b, i) => head[i] === b);

/** Tells the format from magic bytes; names and media types play no part. */
export function detectFormat(head: Buffer): Detected {
  if (startsWith(head, 0x1f, 0x8b)) return 'tar.gz';
  if (startsWith(head, 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'tar.xz';
  if (startsWith(head, 0x28, 0xb5, 0x2f, 0xfd)) return 'tar.zst';
  if (startsWith(head, 0x50, 0x4b, 0x03, 0x04) || startsWith(head, 0x50, 0x4b, 0x05, 0x06)) return 'zip';
  if (startsWith(head, 0x42, 0x5a, 0x68)) return 'tar.bz2';
  if (looksLikeTar(head)) return 'tar';
  return 'unknown';
}

/** The first block of a file, for {@link detectFormat}. */
export async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(BLOCK);
    const { bytesRead } = await fh.read(buf, 0, BLOCK, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
