import type { Stats } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ClosurePath } from './image-types.js';
import { dirEntries, leafNode, lstatMany, newDir, type DirNode, type TreeNode } from './layer-tree.js';
import { RootConflictError } from './merge.js';

/**
 * The closure's store paths placed at <storeDir>/<name> in the layer, as nixpkgs appends them
 * (owner 0:0, modes as in the store, hard links dereferenced). Paths a base layer already holds
 * are left out, compared by store path. The store directories (mode 0555, as nixpkgs makes
 * them) are written when something is added and neither the root nor the base has them.
 */

const ROOT_OWNER = { uid: 0, gid: 0 };
const STORE_DIR_MODE = 0o555;

export interface Placement {
  added: string[];
  skipped: string[];
  /** Bytes of the files added. */
  closureSize: number;
}

export interface BaseStoreView {
  storePaths: ReadonlySet<string>;
  /** Relative directory paths ('nix', 'nix/store') that exist in the base's file system. */
  dirs: ReadonlySet<string>;
}

export async function placeClosure(tree: DirNode, closure: readonly ClosurePath[], storeDir: string, base: BaseStoreView): Promise<Placement> {
  const unique = new Map<string, string>();
  for (const c of closure) unique.set(c.storePath, c.realPath);
  const paths = [...unique.keys()].sort();
  const added = paths.filter((p) => !base.storePaths.has(p));
  const skipped = paths.filter((p) => base.storePaths.has(p));
  let closureSize = 0;
  if (added.length === 0) return { added, skipped, closureSize };

  const storeNode = storeDirNode(tree, storeDir, base);
  for (const storePath of added) {
    const name = basename(storePath);
    const existing = storeNode.children.get(name);
    if (existing) throw new RootConflictError(`${existing.label} already has ${storePath} in the image root; the closure places it there too (remove it from the root)`);
    const label = `store path ${storePath}`;
    const real = unique.get(storePath)!;
    const { node, bytes } = await readStoreTree(real, await lstat(real), label);
    storeNode.children.set(name, node);
    closureSize += bytes;
  }
  return { added, skipped, closureSize };
}

/** The node of the store directory, creating the missing levels (written only where the base lacks them). */
function storeDirNode(tree: DirNode, storeDir: string, base: BaseStoreView): DirNode {
  let node = tree;
  let rel = '';
  for (const part of storeDir.split('/').filter(Boolean)) {
    rel = rel ? `${rel}/${part}` : part;
    const next = node.children.get(part);
    if (next === undefined) {
      const dir = newDir(STORE_DIR_MODE, ROOT_OWNER, 'the store directory', true);
      dir.emit = !base.dirs.has(rel);
      node.children.set(part, dir);
      node = dir;
    } else if (next.kind === 'dir') {
      node = next;
    } else {
      throw new RootConflictError(`${next.label} has a non-directory at /${rel}, where the closure needs the store directory ${storeDir}`);
    }
  }
  return node;
}

/** A store path's tree as it is on disk (symlinks kept, not followed). */
async function readStoreTree(real: string, st: Stats, label: string): Promise<{ node: TreeNode; bytes: number }> {
  if (st.isDirectory()) {
    const dir = newDir(st.mode & 0o7777, ROOT_OWNER, label, true);
    let bytes = 0;
    const names = await dirEntries(real);
    const paths = names.map((n) => join(real, n));
    const stats = await lstatMany(paths);
    for (const [i, name] of names.entries()) {
      const child = await readStoreTree(paths[i]!, stats[i]!, label);
      dir.children.set(name, child.node);
      bytes += child.bytes;
    }
    return { node: dir, bytes };
  }
  const leaf = await leafNode(real, st, ROOT_OWNER, label, true);
  if (!leaf) throw new Error(`${label}: ${real} is a socket, which a store path cannot hold`);
  return { node: leaf, bytes: leaf.kind === 'file' ? leaf.size : 0 };
}
