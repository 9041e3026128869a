import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import type { ClosurePath } from './image-types.js';
import { lookup, type DirNode, type FileNode } from './layer-tree.js';

/**
 * nixpkgs#94636: a copyToRoot path lands in the layer twice, at / and under the store. Here a
 * root file that is the same as the file at the same relative path of a store path placed in
 * this layer (same bytes, mode and owner: a hard link shares all three) is paired with it; the
 * layer writer then writes the bytes once and the other name as a tar hard link.
 */

export interface DuplicatePair {
  root: FileNode;
  store: FileNode;
}

export async function findDuplicates(
  tree: DirNode, dedupeAgainst: readonly ClosurePath[], added: ReadonlySet<string>, storeDir: string, signal?: AbortSignal,
): Promise<DuplicatePair[]> {
  const pairs: DuplicatePair[] = [];
  const paired = new Set<FileNode>();
  for (const d of dedupeAgainst) {
    if (!added.has(d.storePath)) continue; // in a base layer: a link cannot cross layers
    const storeNode = lookup(tree, `${storeDir.replace(/^\/+/, '')}/${basename(d.storePath)}`);
    if (!storeNode || storeNode.kind !== 'dir') continue;
    for (const [rel, file] of rootFiles(tree, '')) {
      signal?.throwIfAborted();
      if (paired.has(file)) continue;
      const twin = lookup(storeNode, rel);
      if (!twin || twin.kind !== 'file' || paired.has(twin)) continue;
      if (twin.size !== file.size || twin.mode !== file.mode || twin.uid !== file.uid || twin.gid !== file.gid) continue;
      // The usual case: the root's copy was read from the store path itself.
      if (twin.real !== file.real && !(await sameBytes(twin.real, file.real, file.size))) continue;
      pairs.push({ root: file, store: twin });
      paired.add(file);
      paired.add(twin);
    }
  }
  return pairs;
}

/** Regular files of the merged root (not the placed closure), with their relative paths. */
function* rootFiles(dir: DirNode, rel: string): Generator<[string, FileNode]> {
  for (const [name, node] of dir.children) {
    if (node.fromClosure) continue;
    const path = rel ? `${rel}/${name}` : name;
    if (node.kind === 'file') yield [path, node];
    else if (node.kind === 'dir') yield* rootFiles(node, path);
  }
}

const CHUNK = 1 << 20;

async function sameBytes(a: string, b: string, size: number): Promise<boolean> {
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const ba = Buffer.allocUnsafe(CHUNK);
    const bb = Buffer.allocUnsafe(CHUNK);
    for (let off = 0; off < size; off += CHUNK) {
      const n = Math.min(CHUNK, size - off);
      const [ra, rb] = await Promise.all([fa.read(ba, 0, n, off), fb.read(bb, 0, n, off)]);
      if (ra.bytesRead !== n || rb.bytesRead !== n) return false;
      if (!ba.subarray(0, n).equals(bb.subarray(0, n))) return false;
    }
    return true;
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}
