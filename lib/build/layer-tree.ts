import type { Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';

/**
 * The new layer as a tree in memory: names, kinds, modes, owners and where each file's bytes
 * are on disk (never the bytes themselves). Merging the roots, placing the closure and pairing
 * duplicate files all work on this tree; the layer tar is written from it in one pass.
 */

interface NodeBase {
  /** Permission bits (with setuid/setgid/sticky), as on disk. */
  mode: number;
  uid: number;
  gid: number;
  /** The source that put the entry here, for errors. */
  label: string;
  /** Part of a store path placed from the closure (not of the merged root). */
  fromClosure: boolean;
}

export interface DirNode extends NodeBase {
  kind: 'dir';
  children: Map<string, TreeNode>;
  /** False for a directory only implied (the store dir when a base layer already has it). */
  emit: boolean;
}

export interface FileNode extends NodeBase {
  kind: 'file';
  real: string;
  size: number;
}

export interface SymlinkNode extends NodeBase {
  kind: 'symlink';
  target: string;
}

export interface DeviceNode extends NodeBase {
  kind: 'char' | 'block';
  major: number;
  minor: number;
}

export interface FifoNode extends NodeBase {
  kind: 'fifo';
}

export type TreeNode = DirNode | FileNode | SymlinkNode | DeviceNode | FifoNode;
export type LeafNode = Exclude<TreeNode, DirNode>;

export interface Owner { uid: number; gid: number }

export function newDir(mode: number, owner: Owner, label: string, fromClosure: boolean): DirNode {
  return { kind: 'dir', children: new Map(), emit: true, mode, uid: owner.uid, gid: owner.gid, label, fromClosure };
}

/** Linux's major()/minor() of a dev_t. */
function devMajor(rdev: number): number {
  const r = BigInt(rdev);
  return Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn));
}
function devMinor(rdev: number): number {
  const r = BigInt(rdev);
  return Number((r & 0xffn) | ((r >> 12n) & ~0xffn));
}

export function ownerOf(st: Stats, owner: Owner | 'keep'): Owner {
  return owner === 'keep' ? { uid: st.uid, gid: st.gid } : owner;
}

/**
 * The leaf node for a non-directory, or null for what a tar cannot hold (a socket: GNU tar
 * skips those too).
 */
export async function leafNode(real: string, st: Stats, owner: Owner, label: string, fromClosure: boolean): Promise<LeafNode | null> {
  const base = { mode: st.mode & 0o7777, uid: owner.uid, gid: owner.gid, label, fromClosure };
  if (st.isFile()) return { ...base, kind: 'file', real, size: st.size };
  if (st.isSymbolicLink()) return { ...base, kind: 'symlink', target: checkedName(await readlink(real, { encoding: 'buffer' }), real) };
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    return { ...base, kind: st.isCharacterDevice() ? 'char' : 'block', major: devMajor(st.rdev), minor: devMinor(st.rdev) };
  }
  if (st.isFIFO()) return { ...base, kind: 'fifo' };
  return null;
}

/** A name read as bytes, as a string; names that are not UTF-8 would not survive the tar writer. */
export function checkedName(raw: Buffer, where: string): string {
  const s = raw.toString('utf8');
  if (!Buffer.from(s, 'utf8').equals(raw)) throw new Error(`${where}: file name ${JSON.stringify(s)} is not valid UTF-8 (not supported in image layers)`);
  return s;
}

/** The entries of a real directory, sorted by bytes so that errors and walks are reproducible. */
export async function dirEntries(dir: string): Promise<string[]> {
  const raw = await readdir(dir, { encoding: 'buffer' });
  raw.sort(Buffer.compare);
  return raw.map((r) => checkedName(r, dir));
}

export function kindName(n: TreeNode): string {
  switch (n.kind) {
    case 'dir': return 'a directory';
    case 'file': return 'a file';
    case 'symlink': return `a symlink (-> ${n.target})`;
    case 'char': return 'a character device';
    case 'block': return 'a block device';
    case 'fifo': return 'a FIFO';
  }
}

/** The node at a relative path ('a/b/c'), or undefined; symlinks are not followed. */
export function lookup(root: DirNode, rel: string): TreeNode | undefined {
  let node: TreeNode = root;
  for (const part of rel.split('/')) {
    if (part === '') continue;
    if (node.kind !== 'dir') return undefined;
    const next: TreeNode | undefined = node.children.get(part);
    if (!next) return undefined;
    node = next;
  }
  return node;
}

/** lstat of many paths, several in flight at once (one at a time costs a thread-pool round trip each). */
export async function lstatMany(paths: readonly string[]): Promise<Stats[]> {
  const out: Stats[] = new Array<Stats>(paths.length);
  const WIDTH = 32;
  for (let i = 0; i < paths.length; i += WIDTH) {
    const batch = await Promise.all(paths.slice(i, i + WIDTH).map((p) => lstat(p)));
    batch.forEach((st, j) => { out[i + j] = st; });
  }
  return out;
}
