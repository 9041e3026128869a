import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { acquireLock } from './lock.js';

const DIGEST_RE = /^sha256:([0-9a-f]{64})$/;

function hexOf(digest: string): string {
  const m = DIGEST_RE.exec(digest);
  if (!m) throw new Error(`invalid blob digest '${digest}': expected sha256:<64 hex digits>`);
  return m[1]!;
}

/**
 * Content-addressed files shared by every image in the store: compressed blobs by their
 * registry digest and uncompressed layers by their diff_id. An entry appears only complete
 * (written to a temp file, digest checked, renamed); a per-digest lock makes concurrent pulls
 * fetch a blob once. Entries are checked again whenever they are read (see `invalidate`).
 */
export class BlobCache {
  readonly dir: string;
  private readonly tmpDir: string;
  private readonly lockDir: string;

  constructor(storeRoot: string) {
    this.dir = join(storeRoot, 'nix', 'var', 'fetch-image', 'blobs', 'sha256');
    this.tmpDir = join(storeRoot, 'nix', 'var', 'fetch-image', 'blobs', 'tmp');
    this.lockDir = join(storeRoot, 'nix', 'var', 'fetch-image', 'blobs', 'locks');
    for (const d of [this.dir, this.tmpDir, this.lockDir]) mkdirSync(d, { recursive: true });
  }

  path(digest: string): string {
    return join(this.dir, hexOf(digest));
  }

  /** Present with the expected size (content is verified by whoever reads it). */
  has(digest: string, size?: number): boolean {
    const st = statSync(this.path(digest), { throwIfNoEntry: false });
    return !!st?.isFile() && (size === undefined || st.size === size);
  }

  /** Drops an entry found to be corrupt, so the next use fetches it again. */
  invalidate(digest: string): void {
    rmSync(this.path(digest), { force: true });
  }

  /**
   * Returns the cache file for `digest`, producing it first if absent. `produce` writes the
   * bytes to the temp path it is given and returns the sha256 digest of what it wrote; a
   * different digest is an error and nothing is cached.
   */
  async ensure(digest: string, size: number | undefined, produce: (tmp: string) => Promise<string>): Promise<string> {
    const file = this.path(digest);
    if (this.has(digest, size)) return file;
    const lock = await acquireLock(join(this.lockDir, `${hexOf(digest)}.lock`));
    try {
      if (this.has(digest, size)) return file;
      const tmp = join(this.tmpDir, `${hexOf(digest)}-${process.pid}-${Math.random().toString(36).slice(2)}`);
      try {
        const got = await produce(tmp);
        if (got !== digest) throw new Error(`blob ${digest}: content has digest ${got}`);
        const st = statSync(tmp);
        if (size !== undefined && st.size !== size) throw new Error(`blob ${digest}: ${st.size} bytes, expected ${size}`);
        // No fsync: an entry torn by a power cut is caught by the digest check every reader of a
        // pre-existing entry makes, and fetched again; flushing hundreds of MB here would only
        // slow every pull down.
        renameSync(tmp, file);
        return file;
      } finally {
        rmSync(tmp, { force: true });
      }
    } finally {
      lock.release();
    }
  }
}
