import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { removeTree } from './fsutil.js';
import { acquireLock } from './lock.js';
import type { LocalStore } from './local-store.js';

const DIFF_ID_RE = /^sha256:([0-9a-f]{64})$/;

/**
 * Base layers unpacked as root file system trees, one directory per diff_id, for the runAsRoot
 * stage's overlay lower dirs: unpacked once and reused by every later build on the same base.
 * Lives beside the store (`<root>/nix/var/fetch-image/layers/<hex>`), never inside it: a tree
 * is a cache, not a store path. The maker writes the tree atomically (temp dir + rename) and a
 * lock per diff_id keeps two builds from unpacking the same layer at once.
 */
export class LayerTreeCache {
  private readonly dir: string;
  private readonly lockDir: string;

  constructor(store: LocalStore) {
    this.dir = join(store.root, 'nix', 'var', 'fetch-image', 'layers');
    this.lockDir = join(this.dir, '.locks');
  }

  private hex(diffId: string): string {
    const m = DIFF_ID_RE.exec(diffId);
    if (!m) throw new Error(`invalid layer diff_id '${diffId}': expected sha256:<64 hex digits>`);
    return m[1]!;
  }

  /** The tree's directory for `diffId`, made by `make(dir)` first when it is not cached yet. */
  async ensure(diffId: string, make: (dir: string) => Promise<void>): Promise<{ dir: string; made: boolean }> {
    const dir = join(this.dir, this.hex(diffId));
    if (existsSync(dir)) return { dir, made: false };
    mkdirSync(this.lockDir, { recursive: true });
    const lock = await acquireLock(join(this.lockDir, this.hex(diffId)));
    try {
      if (existsSync(dir)) return { dir, made: false };
      await make(dir);
      return { dir, made: true };
    } finally {
      lock.release();
    }
  }

  /** Removes every cached tree whose diff_id `keep` rejects (store gc: layers no valid archive holds); returns their diff_ids. */
  async prune(keep: (diffId: string) => boolean): Promise<string[]> {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const name of names) {
      // A maker's temp dir (`.<hex>.prepare-…`) is left over from a crash once its lock is free.
      const temp = /^\.([0-9a-f]{64})\.prepare-/.exec(name);
      const hex = temp ? temp[1]! : name;
      const diffId = `sha256:${hex}`;
      if (!DIFF_ID_RE.test(diffId) || (!temp && keep(diffId))) continue;
      mkdirSync(this.lockDir, { recursive: true });
      const lock = await acquireLock(join(this.lockDir, hex));
      try {
        await removeTree(join(this.dir, name));
        if (!temp) removed.push(diffId);
      } finally {
        lock.release();
      }
    }
    return removed;
  }
}
