import { parseNar } from './reader.js';

export interface NarEntry {
  /** Names from the top, as bytes; empty for the top-level node. */
  path: Buffer[];
  type: 'regular' | 'directory' | 'symlink';
  executable?: boolean;
  size?: number;
  target?: Buffer;
}

/** Lists (and fully validates) a NAR, draining file contents without keeping them. */
export async function listNar(input: AsyncIterable<Uint8Array>): Promise<NarEntry[]> {
  const entries: NarEntry[] = [];
  await parseNar(input, {
    directory(path) {
      entries.push({ path: [...path], type: 'directory' });
    },
    async file(path, executable, size, contents) {
      for await (const _ of contents); // validation needs the bytes consumed, not kept
      entries.push({ path: [...path], type: 'regular', executable, size });
    },
    symlink(path, target) {
      entries.push({ path: [...path], type: 'symlink', target });
    },
  });
  return entries;
}
