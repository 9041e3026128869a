import type { Stats } from 'node:fs';
import { lstat, readlink, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, posix, resolve } from 'node:path';
import type { ClosurePath, RootSource } from './image-types.js';
import {
  dirEntries, kindName, leafNode, lstatMany, newDir, ownerOf, type DirNode, type Owner, type TreeNode,
} from './layer-tree.js';

/**
 * The layer root merged from several sources the way nixpkgs' mkPureLayer does it,
 * `rsync -a -k` (or `-K` with keepContentsDirlinks) of each source into one directory:
 * - later sources win: a file, symlink or device replaces what an earlier source put there;
 *   directories merge, taking the later one's mode;
 * - a directory where an earlier source has a non-directory, or the other way round, is an
 *   error naming both sources (rsync would replace the one and fail on the other);
 * - without keepContentsDirlinks (`-k`) a symlink that leads to a directory is copied as that
 *   directory (what buildEnv's directory symlinks become in nixpkgs' images). Absolute targets
 *   inside the store are followed through the closure's real locations; a link that leads
 *   anywhere else than the source or the closure is not read from this machine (rsync would:
 *   impure) and stays a symlink;
 * - with keepContentsDirlinks (`-K`) a directory symlink already in the layer stays, and a later
 *   source's directory at that name is merged into where it leads, inside the layer.
 */

export class RootConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RootConflictError';
  }
}

interface MergeContext {
  owner: Owner | 'keep';
  keepDirlinks: boolean;
  storeDir: string;
  /** Logical store path → real location (the closure and any root that is a store path). */
  realOf: Map<string, string>;
  /** dev:ino of the real directories being walked, to stop at symlink loops. */
  walking: Set<string>;
  tree: DirNode;
  /** The real directories a followed symlink may lead into: the current root and the closure. */
  readable: string[];
}

const MAX_HOPS = 40;

/** Merges `roots` into a fresh tree (the layer root, whose own entry is not written). */
export async function mergeRoots(
  roots: readonly RootSource[], opts: { owner: Owner | 'keep'; keepContentsDirlinks: boolean; storeDir: string; closure: readonly ClosurePath[] },
): Promise<DirNode> {
  const realOf = new Map(opts.closure.map((c) => [c.storePath, c.realPath]));
  for (const r of roots) if (r.storePath) realOf.set(r.storePath, r.dir);
  const tree = newDir(0o755, { uid: 0, gid: 0 }, 'layer root', false);
  const ctx: MergeContext = { owner: opts.owner, keepDirlinks: opts.keepContentsDirlinks, storeDir: opts.storeDir, realOf, walking: new Set(), tree, readable: [] };
  for (const root of roots) {
    // Like rsync's `SRC/`: a root given as a symlink to a directory means that directory.
    const st = await stat(root.dir).catch((e: NodeJS.ErrnoException) => {
      throw new Error(`${root.label}: cannot read ${root.dir}: ${e.code ?? e.message}`);
    });
    if (!st.isDirectory()) throw new RootConflictError(`${root.label}: ${root.dir} is not a directory (only directories can be merged into the image root)`);
    ctx.readable = [resolve(root.dir), ...[...realOf.values()].map((r) => resolve(r))];
    await mergeDir(ctx, root.dir, st, tree, '', root.label);
  }
  return tree;
}

async function mergeDir(ctx: MergeContext, realDir: string, st: Stats, into: DirNode, rel: string, label: string): Promise<void> {
  const id = `${st.dev}:${st.ino}`;
  if (ctx.walking.has(id)) throw new RootConflictError(`${label}: /${rel} leads back into itself through a directory symlink (a loop)`);
  ctx.walking.add(id);
  try {
    const names = await dirEntries(realDir);
    const paths = names.map((n) => join(realDir, n));
    const stats = await lstatMany(paths);
    for (const [i, name] of names.entries()) {
      await mergeEntry(ctx, paths[i]!, stats[i]!, into, rel === '' ? name : `${rel}/${name}`, name, label);
    }
  } finally {
    ctx.walking.delete(id);
  }
}

async function mergeEntry(ctx: MergeContext, real: string, lst: Stats, parent: DirNode, rel: string, name: string, label: string): Promise<void> {
  let st = lst;
  let realDir = real;
  if (st.isSymbolicLink() && !ctx.keepDirlinks) {
    const referent = await directoryReferent(ctx, real);
    if (referent) {
      realDir = referent.path;
      st = referent.st;
    }
  }
  const existing = parent.children.get(name);
  if (st.isDirectory()) {
    let target: DirNode;
    if (!existing) {
      target = newDir(st.mode & 0o7777, ownerOf(st, ctx.owner), label, false);
      parent.children.set(name, target);
    } else if (existing.kind === 'dir') {
      target = existing;
    } else if (existing.kind === 'symlink' && ctx.keepDirlinks) {
      const through = followInTree(ctx.tree, rel, existing.target);
      if (!through) {
        throw new RootConflictError(
          `/${rel}: ${existing.label} has ${kindName(existing)}, which does not lead to a directory inside the layer, ` +
          `and ${label} has a directory there (keepContentsDirlinks merges through symlinks within the layer only)`,
        );
      }
      target = through;
    } else {
      throw conflict(rel, existing, label, 'a directory');
    }
    const owner = ownerOf(st, ctx.owner);
    target.mode = st.mode & 0o7777;
    target.uid = owner.uid;
    target.gid = owner.gid;
    target.label = label;
    await mergeDir(ctx, realDir, st, target, rel, label);
    return;
  }
  const leaf = await leafNode(real, st, ownerOf(st, ctx.owner), label, false);
  if (!leaf) return;
  if (existing?.kind === 'dir') throw conflict(rel, existing, label, kindName(leaf));
  parent.children.set(name, leaf);
}

function conflict(rel: string, existing: TreeNode, label: string, what: string): RootConflictError {
  return new RootConflictError(
    `/${rel}: ${existing.label} has ${kindName(existing)} and ${label} has ${what} there; a file and a directory cannot be merged (remove one of them)`,
  );
}

/** Where an absolute target inside the store really is, or null (outside the store, or not in the closure). */
function realOfLogical(ctx: MergeContext, target: string): string | null {
  const norm = posix.normalize(target);
  if (!norm.startsWith(`${ctx.storeDir}/`)) return null;
  const rest = norm.slice(ctx.storeDir.length + 1);
  const slash = rest.indexOf('/');
  const storePath = `${ctx.storeDir}/${slash < 0 ? rest : rest.slice(0, slash)}`;
  const real = ctx.realOf.get(storePath);
  if (real === undefined) return null;
  return slash < 0 ? real : join(real, rest.slice(slash + 1));
}

/** The directory a symlink finally leads to (rsync -k's stat of it), or null if it is no directory we may read. */
async function directoryReferent(ctx: MergeContext, link: string): Promise<{ path: string; st: Stats } | null> {
  let p = link;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const st = await lstat(p).catch(() => null);
    if (!st) return null;
    if (!st.isSymbolicLink()) return st.isDirectory() && isReadable(ctx, p) ? { path: p, st } : null;
    const target = await readlink(p);
    const next = isAbsolute(target) ? realOfLogical(ctx, target) : resolve(dirname(p), target);
    if (next === null) return null;
    p = next;
  }
  return null;
}

// Only the sources and the closure are read: a link leading elsewhere on this machine stays a link.
function isReadable(ctx: MergeContext, p: string): boolean {
  const abs = resolve(p);
  return ctx.readable.some((r) => abs === r || abs.startsWith(`${r}/`));
}

/**
 * The directory node the symlink at `rel` leads to inside the layer, following
 * further symlinks in the layer; null when it leaves the layer or ends elsewhere than a directory.
 */
function followInTree(root: DirNode, rel: string, target: string): DirNode | null {
  let parts = [...posix.dirname(rel).split('/').filter((p) => p !== '' && p !== '.')];
  let pending = [...target.split('/')];
  if (target.startsWith('/')) parts = [];
  let hops = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (!parts.length) return null; // leaves the layer
      parts.pop();
      continue;
    }
    const dir: TreeNode | null = resolveParts(root, parts);
    if (!dir || dir.kind !== 'dir') return null;
    const next: TreeNode | undefined = dir.children.get(part);
    if (!next) return null;
    if (next.kind === 'symlink') {
      if (++hops > MAX_HOPS) return null;
      if (next.target.startsWith('/')) parts = [];
      pending = [...next.target.split('/'), ...pending];
      continue;
    }
    parts.push(part);
  }
  const end = resolveParts(root, parts);
  return end && end.kind === 'dir' ? end : null;
}

function resolveParts(root: DirNode, parts: readonly string[]): TreeNode | null {
  let node: TreeNode = root;
  for (const p of parts) {
    if (node.kind !== 'dir') return null;
    const next: TreeNode | undefined = node.children.get(p);
    if (!next) return null;
    node = next;
  }
  return node;
}
