import { closeSync, constants, copyFileSync, fchmodSync, ftruncateSync, linkSync, lstatSync, mkdirSync, openSync, symlinkSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import type { ArchiveEntry, EntrySink } from './entry.js';
import { RefusedEntryError, errnoCode, shown } from './errors.js';
import { joinPath, memberPath, under } from './names.js';
import type { SparseMap } from './tar-sparse.js';

// O_EXCL with O_CREAT never follows a symlink at the final component; O_NOFOLLOW says so twice.
const NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const SYMLINK_MAX = 4096;

/*
 * File system calls here are synchronous on purpose, as in GNU tar: each member needs several
 * dependent calls (mkdir, open, chmod, write, close) and a round trip through libuv's pool for
 * each made unpacking thousands of small files four times slower, waiting on nothing. The
 * data still arrives as an async stream, so the event loop turns between chunks.
 */

/**
 * Writes archive members below one private directory, refusing anything that could touch a
 * path outside it:
 * - names with `..` or a leading '/', and device nodes, FIFOs and sockets are refused;
 * - parents are real directories this writer made or met: a member reached through a symlink
 *   (even one pointing inside) is refused, so no write ever follows a link;
 * - symlink targets are only text, as in a NAR: absolute or leading out, they are kept as Nix
 *   (and nix-prefetch-url --unpack) keeps them, since nothing is ever written through a link;
 * - hard links name earlier members inside the tree, never directories.
 * Repeated names follow tar: a later member replaces an earlier file, symlink or hard link (the
 * old name is unlinked first, never written through); directories merge; nothing replaces a
 * directory.
 */
export class SafeTree implements EntrySink {
  readonly root: Buffer;
  /** Members delivered, of every kind. */
  entries = 0;
  /** Directories known to be real directories, keyed by their latin1-decoded relative path. */
  private readonly dirs = new Set<string>(['']);

  constructor(root: string) {
    this.root = Buffer.from(root);
  }

  /**
   * Makes room for a member its caller creates itself (a device node): parents become real
   * directories as for any member, and an earlier non-directory member of that name goes.
   * Returns the path to create.
   */
  clearFor(name: Buffer, parts: Buffer[]): Buffer {
    if (parts.length === 0) throw new RefusedEntryError(name, 'it names the output directory itself');
    this.parents(name, parts);
    const p = under(this.root, parts);
    const st = lstatOrNull(p);
    if (st?.isDirectory()) throw new RefusedEntryError(name, 'it would replace a directory extracted before it');
    if (st) unlinkSync(p);
    return p;
  }

  async add(entry: ArchiveEntry): Promise<void> {
    this.entries++;
    const parts = memberPath(entry.name);
    if (typeof parts === 'string') throw new RefusedEntryError(entry.name, parts);
    switch (entry.kind) {
      case 'special':
        throw new RefusedEntryError(entry.name, `${entry.what} are not allowed`);
      case 'directory':
        return this.directory(entry.name, parts);
    }
    if (parts.length === 0) throw new RefusedEntryError(entry.name, 'it names the output directory itself');
    switch (entry.kind) {
      case 'file':
        return this.file(entry.name, parts, entry.executable, entry.body, entry.sparse);
      case 'symlink':
        return this.symlink(entry.name, parts, entry.target);
      case 'hardlink':
        return this.hardlink(entry.name, parts, entry.target);
    }
  }

  private directory(name: Buffer, parts: Buffer[]): void {
    if (parts.length === 0) return;
    this.parents(name, parts);
    const p = under(this.root, parts);
    try {
      mkdirSync(p, 0o755);
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
      if (!lstatSync(p).isDirectory()) {
        unlinkSync(p);
        mkdirSync(p, 0o755);
      }
    }
    this.dirs.add(key(parts));
  }

  private async file(name: Buffer, parts: Buffer[], executable: boolean, body: AsyncIterable<Buffer>, sparse?: SparseMap): Promise<void> {
    this.parents(name, parts);
    const p = under(this.root, parts);
    const mode = executable ? 0o755 : 0o644;
    const fd = this.create(name, p, () => openSync(p, NEW_FILE, mode));
    try {
      fchmodSync(fd, mode); // whatever the umask
      if (sparse) await writeSparse(fd, body, sparse);
      else for await (const chunk of body) writeAll(fd, chunk);
    } finally {
      closeSync(fd);
    }
  }

  private symlink(name: Buffer, parts: Buffer[], target: Buffer): void {
    if (target.length === 0) throw new RefusedEntryError(name, 'its symlink target is empty');
    if (target.length > SYMLINK_MAX || target.includes(0)) throw new RefusedEntryError(name, 'its symlink target is not a valid path');
    this.parents(name, parts);
    const p = under(this.root, parts);
    this.create(name, p, () => symlinkSync(target, p));
  }

  private hardlink(name: Buffer, parts: Buffer[], target: Buffer): void {
    const to = memberPath(target);
    if (typeof to === 'string') throw new RefusedEntryError(name, `its hard link target '${shown(target)}' is outside the output`);
    if (to.length === 0) throw new RefusedEntryError(name, 'hard links to directories are not allowed');
    const missing = `its hard link target '${shown(target)}' was not extracted before it`;
    for (let i = 1; i < to.length; i++) {
      const dir = to.slice(0, i);
      if (this.dirs.has(key(dir))) continue;
      const st = lstatOrNull(under(this.root, dir));
      if (st?.isSymbolicLink()) throw new RefusedEntryError(name, `its hard link target '${shown(target)}' is reached through the symlink '${shown(joinPath(dir))}'`);
      if (!st?.isDirectory()) throw new RefusedEntryError(name, missing);
      this.dirs.add(key(dir));
    }
    const from = under(this.root, to);
    const st = lstatOrNull(from);
    if (st === null) throw new RefusedEntryError(name, missing);
    if (st.isDirectory()) throw new RefusedEntryError(name, 'hard links to directories are not allowed');
    if (key(to) === key(parts)) return;
    this.parents(name, parts);
    const p = under(this.root, parts);
    this.create(name, p, () => {
      try {
        linkSync(from, p);
      } catch (e) {
        // Some file systems have no hard links (or a link count limit): a copy hashes the same.
        const code = errnoCode(e);
        if (!st.isFile() || (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EMLINK' && code !== 'EOPNOTSUPP')) throw e;
        copyFileSync(from, p, constants.COPYFILE_EXCL);
      }
    });
  }

  /** Makes sure every parent of `parts` is a real directory, creating missing ones. */
  private parents(name: Buffer, parts: Buffer[]): void {
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i);
      const k = key(dir);
      if (this.dirs.has(k)) continue;
      const p = under(this.root, dir);
      try {
        mkdirSync(p, 0o755);
      } catch (e) {
        if (errnoCode(e) !== 'EEXIST') throw e;
        const st = lstatSync(p);
        if (st.isSymbolicLink()) throw new RefusedEntryError(name, `it would be written through the symlink '${shown(joinPath(dir))}'`);
        if (!st.isDirectory()) throw new RefusedEntryError(name, `its parent '${shown(joinPath(dir))}' is not a directory`);
      }
      this.dirs.add(k);
    }
  }

  /** Runs `make`; if the name is taken by an earlier non-directory, unlinks that and retries. */
  private create<T>(name: Buffer, p: Buffer, make: () => T): T {
    try {
      return make();
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
    }
    if (lstatSync(p).isDirectory()) throw new RefusedEntryError(name, 'it would replace a directory extracted before it');
    unlinkSync(p);
    return make();
  }
}

function key(parts: readonly Buffer[]): string {
  return joinPath(parts).toString('latin1');
}

function writeAll(fd: number, chunk: Buffer, from = 0, length = chunk.length, at: number | null = null): void {
  for (let off = 0; off < length; ) {
    off += writeSync(fd, chunk, from + off, length - off, at === null ? null : at + off);
  }
}

/** Writes each stored segment at its offset (the map was checked against the data size) and leaves holes between. */
async function writeSparse(fd: number, body: AsyncIterable<Buffer>, map: SparseMap): Promise<void> {
  const seg = map.segments;
  let i = -2;
  let at = 0;
  let left = 0;
  for await (const chunk of body) {
    for (let c = 0; c < chunk.length; ) {
      while (left === 0) {
        i += 2;
        at = seg[i] as number;
        left = seg[i + 1] as number;
      }
      const n = Math.min(left, chunk.length - c);
      writeAll(fd, chunk, c, n, at);
      c += n;
      at += n;
      left -= n;
    }
  }
  ftruncateSync(fd, map.realSize);
}

function lstatOrNull(p: Buffer): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}
