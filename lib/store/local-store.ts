import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Hash, hashFile, parseHash } from '../hash/index.js';
import { dumpPath, restoreNar } from '../nar/index.js';
import { acquireLock, type Lock } from './lock.js';
import { ContentIndex } from './content-index.js';
import { LayerTreeCache } from './layer-tree-cache.js';
import { canonicalise, canonicaliseAll, fsyncDir, removeTree, writeFileAtomic } from './fsutil.js';
import { DEFAULT_STORE_DIR, contentAddress, isStorePath, makeFixedOutputPath, makeTextPath, parseStorePath, type ContentMethod } from './path.js';
import { ReferenceScanner } from './references.js';

/** What the store records about a valid path; the field names follow `nix path-info --json`. */
export interface PathInfo {
  path: string;
  narHash: string;
  narSize: number;
  references: string[];
  ca?: string;
  deriver?: string;
  registrationTime: number;
  signatures: string[];
}

export interface StoreOptions {
  /** Physical root; files live at `<root><storeDir>/<hash>-<name>`. */
  root?: string;
  /** Logical store directory, part of every path's hash. */
  storeDir?: string;
  env?: NodeJS.ProcessEnv;
}

export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FETCH_IMAGE_STORE) return env.FETCH_IMAGE_STORE;
  const data = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  return join(data, 'fetch-image');
}

export interface RegisterOptions {
  references?: readonly string[];
  ca?: string;
  deriver?: string;
  signatures?: readonly string[];
  /** Known NAR hash and size (e.g. computed while the content was produced); else computed here. */
  narHash?: Hash;
  narSize?: number;
  /** Candidate store paths to scan the content for; found ones are added to `references`. */
  scanFor?: readonly string[];
  /** The content was already made canonical and flushed to disk (see `prepare`). */
  prepared?: boolean;
}

export interface VerifyProblem {
  path: string;
  problem: string;
}

/**
 * A Nix-style local store under a physical root. A path is valid once its metadata file exists;
 * the content is moved into place first, so a crash at any point leaves either nothing valid or
 * a complete, canonical path. Cross-process locks per path serialise concurrent adds.
 */
export class LocalStore {
  readonly storeDir: string;
  readonly root: string;
  readonly physicalStoreDir: string;
  private readonly varDir: string;
  private readonly dbDir: string;
  private readonly lockDir: string;
  private readonly tmpDir: string;
  readonly rootsDir: string;

  constructor(opts: StoreOptions = {}) {
    this.storeDir = (opts.storeDir ?? DEFAULT_STORE_DIR).replace(/\/+$/, '');
    this.root = opts.root ?? defaultStoreRoot(opts.env);
    this.physicalStoreDir = join(this.root, this.storeDir);
    this.varDir = join(this.root, 'nix', 'var', 'fetch-image');
    this.dbDir = join(this.varDir, 'db');
    this.lockDir = join(this.varDir, 'locks');
    this.tmpDir = join(this.varDir, 'tmp');
    this.rootsDir = join(this.varDir, 'gcroots');
    for (const d of [this.physicalStoreDir, this.dbDir, this.lockDir, this.tmpDir, this.rootsDir]) mkdirSync(d, { recursive: true });
  }

  /** The real file location of a logical store path. */
  realPath(storePath: string): string {
    const { baseName } = parseStorePath(storePath, this.storeDir);
    return join(this.physicalStoreDir, baseName);
  }

  /** Accepts a logical path, a real path or a base name, and returns the logical store path. */
  toStorePath(p: string): string {
    if (p.startsWith(this.physicalStoreDir + '/')) p = this.storeDir + p.slice(this.physicalStoreDir.length);
    if (!p.includes('/')) p = `${this.storeDir}/${p}`;
    const { baseName } = parseStorePath(p, this.storeDir);
    return `${this.storeDir}/${baseName}`;
  }

  private infoFile(storePath: string): string {
    return join(this.dbDir, `${parseStorePath(storePath, this.storeDir).hashPart}.json`);
  }

  isValid(storePath: string): boolean {
    return this.pathInfo(storePath) !== undefined;
  }

  pathInfo(storePath: string): PathInfo | undefined {
    let info: PathInfo;
    try {
      info = JSON.parse(readFileSync(this.infoFile(storePath), 'utf8')) as PathInfo;
    } catch {
      return undefined;
    }
    if (info.path !== storePath) return undefined;
    try {
      lstatSync(this.realPath(storePath));
    } catch {
      return undefined;
    }
    return info;
  }

  requireInfo(storePath: string): PathInfo {
    const info = this.pathInfo(storePath);
    if (!info) throw new Error(`path '${storePath}' is not valid in the store at ${this.root}`);
    return info;
  }

  /** All valid paths, sorted. */
  list(): PathInfo[] {
    const out: PathInfo[] = [];
    for (const f of readdirSync(this.dbDir)) {
      if (!f.endsWith('.json')) continue;
      try {
        const info = JSON.parse(readFileSync(join(this.dbDir, f), 'utf8')) as PathInfo;
        if (existsSync(this.realPath(info.path)) || isSymlink(this.realPath(info.path))) out.push(info);
      } catch {
        // a foreign or damaged file is not a valid path
      }
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async lockPath(storePath: string, onWait?: () => void): Promise<Lock> {
    const opts = onWait ? { onWait } : {};
    return acquireLock(join(this.lockDir, `${parseStorePath(storePath, this.storeDir).hashPart}.lock`), opts);
  }

  /** A fresh private directory on the store's file system, for builders and restores. */
  makeTempDir(prefix = 'build'): string {
    return mkdtempSync(join(this.tmpDir, `${prefix}-${process.pid}-`));
  }

  /**
   * Moves `tempPath` (on the store's file system) into place as `storePath`, canonical, and
   * registers it. The caller holds the path lock. If the path is already valid the temp copy is
   * discarded. Returns the registered info.
   */
  async register(storePath: string, tempPath: string, opts: RegisterOptions = {}): Promise<PathInfo> {
    const existing = this.pathInfo(storePath);
    if (existing) {
      await removeTree(tempPath);
      return existing;
    }
    let narHash = opts.narHash;
    let narSize = opts.narSize;
    const references = new Set(opts.references ?? []);
    if (!narHash || narSize === undefined || opts.scanFor?.length) {
      const h = createHash('sha256');
      const scanner = new ReferenceScanner(opts.scanFor ?? []);
      let size = 0;
      for await (const chunk of dumpPath(tempPath)) {
        h.update(chunk);
        scanner.update(chunk);
        size += chunk.length;
      }
      narHash = new Hash('sha256', h.digest());
      narSize = size;
      for (const r of scanner.result()) references.add(r);
    }
    const real = this.realPath(storePath);
    await removeTree(real); // an invalid leftover of a crashed add
    if (!opts.prepared) await canonicalise(tempPath);
    renameSync(tempPath, real);
    fsyncDir(this.physicalStoreDir);
    const info: PathInfo = {
      path: storePath,
      narHash: narHash.prefixed('nix32'),
      narSize,
      references: [...references].sort(),
      registrationTime: Math.floor(Date.now() / 1000),
      signatures: [...(opts.signatures ?? [])],
    };
    if (opts.ca) info.ca = opts.ca;
    if (opts.deriver) info.deriver = opts.deriver;
    writeFileAtomic(this.infoFile(storePath), JSON.stringify(info, null, 2) + '\n');
    return info;
  }

  /**
   * Makes several outputs canonical and durable with a single flush, ahead of registering each
   * with `prepared: true` (an import of a whole closure, say).
   */
  async prepare(tempPaths: readonly string[]): Promise<void> {
    await canonicaliseAll(tempPaths);
  }

  /** Adds a copy of `src` like `nix-store --add-fixed [--recursive] sha256`. */
  async addPath(src: string, opts: { name: string; method: ContentMethod }): Promise<PathInfo> {
    const tmp = this.makeTempDir('add');
    const dest = join(tmp, 'out');
    try {
      // Copying through the NAR keeps exactly what a NAR records and hashes in the same pass.
      const h = createHash('sha256');
      let size = 0;
      // dumpPath recycles its buffers once the next chunk is asked for, while the restore may
      // still hold a piece of one in a write queue: hand it copies.
      const tee = async function* (): AsyncGenerator<Buffer> {
        for await (const chunk of dumpPath(src)) {
          h.update(chunk);
          size += chunk.length;
          yield Buffer.from(chunk);
        }
      };
      await restoreNar(tee(), dest);
      const narHash = new Hash('sha256', h.digest());
      let caHash = narHash;
      if (opts.method === 'flat') {
        if (!statSync(dest).isFile() || isSymlink(dest)) throw new Error(`'${src}' is not a regular file: --flat needs one`);
        caHash = await hashFile(dest, 'sha256');
      }
      const storePath = makeFixedOutputPath(opts.method, caHash, opts.name, { storeDir: this.storeDir });
      const lock = await this.lockPath(storePath);
      try {
        return await this.register(storePath, dest, { narHash, narSize: size, ca: contentAddress(opts.method, caHash) });
      } finally {
        lock.release();
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  /** Adds a text file (recipes) as Nix's `builtins.toFile` would. */
  async addText(name: string, contents: string, references: readonly string[] = []): Promise<string> {
    const storePath = makeTextPath(name, contents, references, this.storeDir);
    if (this.isValid(storePath)) return storePath;
    const lock = await this.lockPath(storePath);
    try {
      if (this.isValid(storePath)) return storePath;
      const tmp = this.makeTempDir('text');
      try {
        const file = join(tmp, 'out');
        writeFileAtomic(file, contents);
        await this.register(storePath, file, { references, ca: contentAddress('text', Hash.of('sha256', contents)) });
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
      return storePath;
    } finally {
      lock.release();
    }
  }

  /** Adds signatures to a valid path's metadata. */
  addSignatures(storePath: string, sigs: readonly string[]): void {
    const info = this.requireInfo(storePath);
    const all = new Set([...info.signatures, ...sigs]);
    writeFileAtomic(this.infoFile(storePath), JSON.stringify({ ...info, signatures: [...all].sort() }, null, 2) + '\n');
  }

  /** The closure of `paths` under references, sorted so that dependencies come first. */
  closure(paths: readonly string[]): string[] {
    const seen = new Set<string>();
    const order: string[] = [];
    const visit = (p: string, stack: Set<string>) => {
      if (seen.has(p)) return;
      if (stack.has(p)) return; // self-reference
      stack.add(p);
      const info = this.requireInfo(p);
      for (const r of info.references) if (r !== p) visit(r, stack);
      stack.delete(p);
      seen.add(p);
      order.push(p);
    };
    for (const p of paths) visit(p, new Set());
    return order;
  }

  /** Re-hashes every valid path (with `checkContents`) and reports each one that is wrong. */
  async verify(opts: { checkContents?: boolean; onPath?: (p: string) => void } = {}): Promise<{ checked: number; problems: VerifyProblem[] }> {
    const problems: VerifyProblem[] = [];
    const infos = this.list();
    for (const info of infos) {
      opts.onPath?.(info.path);
      for (const r of info.references) {
        if (r !== info.path && !this.isValid(r)) problems.push({ path: info.path, problem: `reference '${r}' is not valid` });
      }
      if (!opts.checkContents) continue;
      try {
        const h = createHash('sha256');
        let size = 0;
        for await (const chunk of dumpPath(this.realPath(info.path))) {
          h.update(chunk);
          size += chunk.length;
        }
        const got = new Hash('sha256', h.digest());
        const want = parseHash(info.narHash);
        if (!got.equals(want)) problems.push({ path: info.path, problem: `NAR hash mismatch: recorded ${want.sri}, got ${got.sri}` });
        else if (size !== info.narSize) problems.push({ path: info.path, problem: `NAR size mismatch: recorded ${info.narSize}, got ${size}` });
      } catch (e) {
        problems.push({ path: info.path, problem: (e as Error).message });
      }
    }
    return { checked: infos.length, problems };
  }

  /** Creates (or replaces) a GC root named `name` pointing at a valid path. */
  addRoot(storePath: string, name?: string): string {
    this.requireInfo(storePath);
    const link = join(this.rootsDir, name ?? parseStorePath(storePath, this.storeDir).baseName);
    if (name && (name.includes('/') || name === '.' || name === '..')) throw new Error(`invalid root name '${name}'`);
    try {
      unlinkSync(link);
    } catch {
      // no previous root of that name
    }
    symlinkSync(this.realPath(storePath), link);
    return link;
  }

  /**
   * An indirect root (Nix's `--out-link`): `link` is a symlink elsewhere (e.g. `./result`) into
   * the store; the path stays live while that symlink still points to it.
   */
  addIndirectRoot(link: string): string {
    const root = join(this.rootsDir, `indirect-${createHash('sha256').update(link).digest('hex').slice(0, 32)}`);
    try {
      unlinkSync(root);
    } catch {
      // first time for this link
    }
    symlinkSync(link, root);
    return root;
  }

  /** Valid store paths named by the roots directory (dangling roots are ignored). */
  roots(): Map<string, string> {
    const out = new Map<string, string>();
    for (const name of readdirSync(this.rootsDir)) {
      const link = join(this.rootsDir, name);
      try {
        let target = readlinkSync(link);
        // An indirect root points to a link outside the store, which points in.
        if (!target.startsWith(this.physicalStoreDir + '/') && name.startsWith('indirect-')) target = readlinkSync(target);
        const p = this.toStorePath(target);
        if (this.isValid(p)) out.set(link, p);
      } catch {
        // not a root we understand
      }
    }
    return out;
  }

  /** Paths reachable from the roots. */
  livePaths(): Set<string> {
    return new Set(this.closure([...new Set(this.roots().values())]));
  }

  /** Deletes unreachable paths (and leftovers of crashed adds). */
  async gc(opts: { dryRun?: boolean } = {}): Promise<{ dead: string[]; bytesFreed: number }> {
    const live = this.livePaths();
    const dead = this.list().map((i) => i.path).filter((p) => !live.has(p));
    let bytesFreed = 0;
    for (const p of dead) bytesFreed += this.requireInfo(p).narSize;
    if (!opts.dryRun) {
      for (const p of dead) await this.deleteUnchecked(p);
      await this.removeLeftovers();
      const index = new ContentIndex(this);
      index.prune();
      // Cached base-layer trees (runAsRoot lower dirs) of layers no valid archive holds any more.
      await new LayerTreeCache(this).prune((diffId) => index.lookup(diffId) !== undefined);
    }
    return { dead, bytesFreed };
  }

  /** Deletes the given paths; refuses any that is live (reachable from a root or referenced by a valid path). */
  async delete(paths: readonly string[]): Promise<void> {
    const live = this.livePaths();
    const doomed = new Set(paths);
    for (const p of paths) {
      this.requireInfo(p);
      if (live.has(p)) throw new Error(`cannot delete '${p}': it is reachable from a GC root (see 'store gc --dry-run')`);
      const referrer = this.list().find((i) => i.path !== p && !doomed.has(i.path) && i.references.includes(p));
      if (referrer) throw new Error(`cannot delete '${p}': it is still referenced by '${referrer.path}'`);
    }
    for (const p of paths) await this.deleteUnchecked(p);
  }

  private async deleteUnchecked(storePath: string): Promise<void> {
    const lock = await this.lockPath(storePath);
    try {
      // Invalidate first, then remove: a crash in between leaves an invalid leftover, never a valid half.
      rmSync(this.infoFile(storePath), { force: true });
      fsyncDir(this.dbDir);
      await removeTree(this.realPath(storePath));
    } finally {
      lock.release();
    }
  }

  /** Removes store entries without metadata and temp dirs of dead processes. */
  private async removeLeftovers(): Promise<void> {
    for (const base of readdirSync(this.physicalStoreDir)) {
      const p = `${this.storeDir}/${base}`;
      if (!isStorePath(p, this.storeDir) || this.isValid(p)) continue;
      const lock = await this.lockPath(p);
      try {
        if (!this.isValid(p)) await removeTree(this.realPath(p));
      } finally {
        lock.release();
      }
    }
    for (const name of readdirSync(this.tmpDir)) {
      const pid = Number(/^[a-z]+-(\d+)-/.exec(name)?.[1]);
      if (pid && pid !== process.pid && !processAlive(pid)) await removeTree(join(this.tmpDir, name));
    }
  }
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
