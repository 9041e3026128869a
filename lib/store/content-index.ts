import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalStore } from './local-store.js';

const DIGEST_RE = /^sha256:([0-9a-f]{64})$/;

/** Where bytes with a given sha256 can be found: a range of a regular file in a valid store path. */
export interface ContentRange {
  /** Logical store path. */
  path: string;
  offset: number;
  size: number;
}

/**
 * An index from the sha256 of some bytes to a range of a store path that holds them, e.g. an
 * uncompressed layer inside a docker-archive: a later image with the same layer copies it from
 * there instead of fetching and inflating it again, and the store keeps one copy on disk.
 * Entries are hints: a lookup checks the path is still valid and big enough, and whoever reads
 * the range must check the bytes' digest (the store can be tampered with like any file).
 */
export class ContentIndex {
  private readonly dir: string;

  constructor(private readonly store: LocalStore) {
    this.dir = join(store.root, 'nix', 'var', 'fetch-image', 'ranges', 'sha256');
  }

  private file(digest: string): string {
    const m = DIGEST_RE.exec(digest);
    if (!m) throw new Error(`invalid content digest '${digest}': expected sha256:<64 hex digits>`);
    return join(this.dir, m[1]!);
  }

  /** A range that should hold the bytes, with its real file, or undefined. */
  lookup(digest: string): (ContentRange & { file: string }) | undefined {
    let entry: ContentRange;
    try {
      entry = JSON.parse(readFileSync(this.file(digest), 'utf8')) as ContentRange;
    } catch {
      return undefined;
    }
    if (typeof entry.path !== 'string' || !Number.isSafeInteger(entry.offset) || !Number.isSafeInteger(entry.size)) return undefined;
    if (!this.store.isValid(entry.path)) return undefined;
    const file = this.store.realPath(entry.path);
    const st = statSync(file, { throwIfNoEntry: false });
    if (!st?.isFile() || st.size < entry.offset + entry.size) return undefined;
    return { ...entry, file };
  }

  /** Records a range (replacing any older entry); written atomically, so readers see all or nothing. */
  record(digest: string, range: ContentRange): void {
    mkdirSync(this.dir, { recursive: true });
    const file = this.file(digest);
    const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    writeFileSync(tmp, JSON.stringify(range));
    renameSync(tmp, file);
  }

  /** Drops entries whose store path is no longer valid (after a garbage collection). */
  prune(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      if (!this.lookup(`sha256:${name}`)) rmSync(join(this.dir, name), { force: true });
    }
  }

  /** Drops an entry whose range turned out not to hold the bytes. */
  forget(digest: string): void {
    rmSync(this.file(digest), { force: true });
  }
}
