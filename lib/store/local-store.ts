import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { Hash, hashFile, parseHash } from '../hash/index.js';
import { dumpPath, restoreNar } from '../nar/index.js';
import { acquireLock, lockHeld, type Lock } from './lock.js';
import { ContentIndex } from './content-index.js';
import { hashForContentAddress, inferContentAddress, parseContentAddress } from './content-address.js';
import { canonicalise, canonicaliseAll, fsyncDir, removeTree, treeBytes, writeFileAtomic } from './fsutil.js';
import { LayerTreeCache } from './layer-tree-cache.js';
import { DEFAULT_STORE_DIR, contentAddress, isStorePath, makeFixedOutputPath, makeTextPath, parseStorePath, type ContentMethod } from './path.js';
import { ReferenceScanner } from './references.js';
import { dataHome } from '../xdg/index.js';
import { parseRecord } from './records.js';
import { deadTempEntries, onInterruptUndo, registerTempArea, sweepDeadTempEntries, type DeadTempEntry } from './temp-areas.js';
import { verifyStore, type VerifyOptions, type VerifyReport } from './verify.js';
import { NoSpaceError, isNoSpace } from './no-space.js';

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
  /**
   * The content was hashed against `ca` (when it was built, added or imported, or later by a
   * pin or `verify --check-contents`). Only such a path may answer a pin.
   */
  caVerified?: boolean;
}

/** What the metadata file of a path says: nothing, something unusable, or a record. */
export type RecordState =
  | { state: 'absent' }
  | { state: 'unreadable'; file: string; reason: string }
  | { state: 'ok'; file: string; info: PathInfo };

/** A metadata file found in the database, with the hash part its name gives. */
export interface RecordEntry {
  hashPart: string;
  record: RecordState & { state: 'unreadable' | 'ok' };
}

export interface StoreOptions {
  /** Physical root; files live at `<root><storeDir>/<hash>-<name>`. */
  root?: string;
  /** Logical store directory, part of every path's hash. */
  storeDir?: string;
  env?: NodeJS.ProcessEnv;
}

export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  // Relative settings are taken against the current directory, so every path printed is absolute.
  if (env.FETCH_IMAGE_STORE) return resolve(env.FETCH_IMAGE_STORE);
  return join(dataHome(env), 'fetch-image');
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
  /** `ca` was checked against this content (see PathInfo.caVerified). */
  caVerified?: boolean;
  /** Replace a registered path (its content was found damaged) instead of keeping it. */
  replace?: boolean;
}

/** A registered path whose content on disk is not what its record says. */
export class DamagedPathError extends Error {
  constructor(readonly storePath: string, readonly damage: string) {
    super(`store path '${storePath}' is registered but damaged: ${damage}; repair it with 'store add --repair' (from this content) or 'store verify --check-contents --repair'`);
  }
}

/** A GC root: its name, and the store path it names (undefined when it names nothing valid). */
export interface GcRoot {
  name: string;
  link: string;
  target: string;
  path?: string;
}

/** What gc found (and, unless a dry run, removed), with the bytes each kind held. */
export interface GcResult {
  dead: string[];
  orphans: string[];
  tempDirs: string[];
  deadBytes: number;
  orphanBytes: number;
  tempBytes: number;
  bytesFreed: number;
}

/** A path moved out of the store for a repair attempt: put back, or dropped once repaired. */
export interface Quarantined {
  restore(): void;
  discard(): Promise<void>;
  readonly info?: PathInfo;
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
    this.root = opts.root !== undefined ? resolve(opts.root) : defaultStoreRoot(opts.env);
    this.physicalStoreDir = join(this.root, this.storeDir);
    this.varDir = join(this.root, 'nix', 'var', 'fetch-image');
    this.dbDir = join(this.varDir, 'db');
    this.lockDir = join(this.varDir, 'locks');
    this.tmpDir = join(this.varDir, 'tmp');
    this.rootsDir = join(this.varDir, 'gcroots');
    for (const d of [this.physicalStoreDir, this.dbDir, this.lockDir, this.tmpDir, this.rootsDir]) mkdirSync(d, { recursive: true });
    for (const area of this.tempAreas()) registerTempArea(area);
  }

  /** Where temp entries named `<prefix>-<pid>-<random>` live: ours and the blob cache's. */
  private tempAreas(): string[] {
    return [this.tmpDir, join(this.varDir, 'blobs', 'tmp')];
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

  /** The record of a valid path: a readable record whose content is present. */
  pathInfo(storePath: string): PathInfo | undefined {
    const r = this.readRecord(storePath);
    if (r.state !== 'ok' || !this.hasContent(storePath)) return undefined;
    return r.info;
  }

  /** Whether anything is at the path's real location (a cheap check, no hashing). */
  hasContent(storePath: string): boolean {
    return lstatSync(this.realPath(storePath), { throwIfNoEntry: false }) !== undefined;
  }

  /** The metadata of `storePath` as found, whether or not its content is there. */
  readRecord(storePath: string): RecordState {
    const file = this.infoFile(storePath);
    const r = this.readRecordFile(file);
    if (r.state === 'ok' && r.info.path !== storePath) return { state: 'unreadable', file, reason: `it describes ${r.info.path}` };
    return r;
  }

  private readRecordFile(file: string): RecordState {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'absent' };
      return { state: 'unreadable', file, reason: (e as Error).message };
    }
    const r = parseRecord(text, this.storeDir);
    return typeof r === 'string' ? { state: 'unreadable', file, reason: r } : { state: 'ok', file, info: r };
  }

  /** Every metadata file in the database, readable or not. */
  records(): RecordEntry[] {
    const out: RecordEntry[] = [];
    for (const f of readdirSync(this.dbDir)) {
      if (!f.endsWith('.json')) continue;
      const hashPart = f.slice(0, -5);
      const record = this.readRecordFile(join(this.dbDir, f));
      if (record.state === 'absent') continue;
      if (record.state === 'ok' && parseStorePath(record.info.path, this.storeDir).hashPart !== hashPart) {
        out.push({ hashPart, record: { state: 'unreadable', file: record.file, reason: `it describes ${record.info.path}, another hash part` } });
      } else {
        out.push({ hashPart, record });
      }
    }
    return out;
  }

  /** Base names of everything in the store directory that looks like a store path. */
  storeEntries(): string[] {
    return readdirSync(this.physicalStoreDir).filter((b) => isStorePath(`${this.storeDir}/${b}`, this.storeDir)).sort();
  }

  /** Whether a live process holds the path's lock (e.g. it is between moving content in and writing the record). */
  pathBusy(storePath: string): boolean {
    return lockHeld(join(this.lockDir, `${parseStorePath(storePath, this.storeDir).hashPart}.lock`));
  }

  /** Rewrites fields of a valid path's record. */
  updateInfo(storePath: string, patch: Partial<Omit<PathInfo, 'path'>>): PathInfo {
    const info = { ...this.requireInfo(storePath), ...patch };
    writeFileAtomic(this.infoFile(storePath), JSON.stringify(info, null, 2) + '\n');
    return info;
  }

  /** How the content of a registered path differs from its record, or undefined if it does not (re-hashes it). */
  async contentDamage(info: PathInfo): Promise<string | undefined> {
    if (!this.hasContent(info.path)) return `its content is missing (nothing at ${this.realPath(info.path)})`;
    const h = createHash('sha256');
    let size = 0;
    try {
      for await (const chunk of dumpPath(this.realPath(info.path))) {
        h.update(chunk);
        size += chunk.length;
      }
    } catch (e) {
      return `its content cannot be read: ${(e as Error).message}`;
    }
    const got = new Hash('sha256', h.digest());
    const want = parseHash(info.narHash);
    if (!got.equals(want)) return `NAR hash mismatch: recorded ${want.sri}, got ${got.sri}`;
    if (size !== info.narSize) return `NAR size mismatch: recorded ${info.narSize}, got ${size}`;
    return undefined;
  }

  /**
   * Hashes a valid path's content against the content address `ca` (a pin, or a recipe's
   * declared hash) and records the outcome: on a match `ca` is recorded as verified; otherwise
   * `ca` is recorded unverified (so verify reports the path), with `deriver` if given.
   */
  async proveContentAddress(storePath: string, ca: string, opts: { deriver?: string } = {}): Promise<{ ok: true; info: PathInfo } | { ok: false; want: Hash; got: Hash }> {
    const lock = await this.lockPath(storePath);
    try {
      const want = parseContentAddress(ca, storePath);
      const got = await hashForContentAddress(want, this.realPath(storePath));
      if (got.equals(want.hash)) {
        const known = this.requireInfo(storePath).deriver;
        return { ok: true, info: this.updateInfo(storePath, { ca, caVerified: true, ...(opts.deriver && !known ? { deriver: opts.deriver } : {}) }) };
      }
      this.updateInfo(storePath, { ca, caVerified: false, ...(opts.deriver ? { deriver: opts.deriver } : {}) });
      return { ok: false, want: want.hash, got };
    } finally {
      lock.release();
    }
  }

  /**
   * Registers content found in the store directory without a record when its name and content
   * prove a content address (flat or recursive sha256, text). Returns the record, or undefined.
   */
  async adoptOrphan(storePath: string): Promise<PathInfo | undefined> {
    const lock = await this.lockPath(storePath);
    try {
      if (this.readRecord(storePath).state === 'ok' || !this.hasContent(storePath)) return undefined;
      const real = this.realPath(storePath);
      const h = createHash('sha256');
      let size = 0;
      for await (const chunk of dumpPath(real)) {
        h.update(chunk);
        size += chunk.length;
      }
      const narHash = new Hash('sha256', h.digest());
      const ca = await inferContentAddress(storePath, narHash, [], real, this.storeDir);
      if (!ca) return undefined;
      const info: PathInfo = {
        path: storePath, narHash: narHash.prefixed('nix32'), narSize: size, references: [],
        registrationTime: Math.floor(Date.now() / 1000), signatures: [], ca, caVerified: true,
      };
      writeFileAtomic(this.infoFile(storePath), JSON.stringify(info, null, 2) + '\n');
      return info;
    } finally {
      lock.release();
    }
  }

  /**
   * Moves a path's record and content aside (into a temp entry of this process) so that a repair
   * can make it valid afresh; `restore` puts both back if the repair failed.
   */
  async quarantine(storePath: string): Promise<Quarantined> {
    const lock = await this.lockPath(storePath);
    try {
      const aside = this.makeTempDir('quarantine');
      const record = this.infoFile(storePath);
      const real = this.realPath(storePath);
      const r = this.readRecord(storePath);
      const moved: [string, string][] = [];
      for (const [from, to] of [[record, join(aside, 'record.json')], [real, join(aside, 'content')]] as const) {
        if (lstatSync(from, { throwIfNoEntry: false })) {
          renameSync(from, to);
          moved.push([from, to]);
        }
      }
      fsyncDir(this.dbDir);
      const restore = () => {
        forget();
        // Content first, record last: the order a path becomes valid in.
        for (const [from, to] of [...moved].reverse()) if (!lstatSync(from, { throwIfNoEntry: false })) renameSync(to, from);
        rmSync(aside, { recursive: true, force: true });
      };
      // Interrupted mid-repair: the path goes back as it was rather than vanishing with the temp entry.
      const forget = onInterruptUndo(restore);
      return {
        ...(r.state === 'ok' ? { info: r.info } : {}),
        restore,
        discard: () => {
          forget();
          return removeTree(aside);
        },
      };
    } finally {
      lock.release();
    }
  }

  /** Removes an unreadable record file (a path whose content is gone too). */
  removeRecordFile(file: string): void {
    if (!file.startsWith(this.dbDir + '/')) throw new Error(`${file} is not a record of the store at ${this.root}`);
    rmSync(file, { force: true });
    fsyncDir(this.dbDir);
  }

  /**
   * The record of a valid path that may be handed on (exported, bundled): not one whose content
   * a pin found not to match its content address.
   */
  requireSound(storePath: string): PathInfo {
    const info = this.requireInfo(storePath);
    if (info.ca && info.caVerified === false) {
      throw new Error(`store path '${storePath}' is invalid: its content does not match its content address ${info.ca}; run 'store verify --check-contents --repair'`);
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
    for (const { record } of this.records()) {
      if (record.state === 'ok' && this.hasContent(record.info.path)) out.push(record.info);
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /**
   * Takes a path's lock. The first lock a process takes also removes the temp entries that
   * killed processes left behind (their owner pid is dead), so a SIGKILL costs no disk for long.
   */
  async lockPath(storePath: string, onWait?: () => void): Promise<Lock> {
    const opts = onWait ? { onWait } : {};
    const lock = await acquireLock(join(this.lockDir, `${parseStorePath(storePath, this.storeDir).hashPart}.lock`), opts);
    if (!this.swept) {
      this.swept = true;
      for (const area of this.tempAreas()) await sweepDeadTempEntries(area);
    }
    return lock;
  }

  private swept = false;

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
    if (existing && !opts.replace) {
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
    if (opts.ca && opts.caVerified) info.caVerified = true;
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

  /**
   * Adds a copy of `src` like `nix-store --add-fixed [--recursive] sha256`. If the path is
   * registered already its content is re-hashed: damaged content is an error (DamagedPathError)
   * unless `repair`, which replaces it with this copy.
   */
  async addPath(src: string, opts: { name: string; method: ContentMethod; repair?: boolean }): Promise<PathInfo> {
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
        if (!lstatSync(dest).isFile()) throw new Error(`'${src}' is not a regular file: --flat needs one`);
        caHash = await hashFile(dest, 'sha256');
      }
      const storePath = makeFixedOutputPath(opts.method, caHash, opts.name, { storeDir: this.storeDir });
      const ca = contentAddress(opts.method, caHash);
      const lock = await this.lockPath(storePath);
      try {
        const existing = this.readRecord(storePath);
        let replace = false;
        if (existing.state === 'ok') {
          const damage = await this.contentDamage(existing.info);
          if (damage && !opts.repair) throw new DamagedPathError(storePath, damage);
          // Same NAR hash as this fresh copy: its content address holds.
          if (!damage) return existing.info.caVerified ? existing.info : this.updateInfo(storePath, { ca, caVerified: true });
          replace = true;
        }
        return await this.register(storePath, dest, { narHash, narSize: size, ca, caVerified: true, replace });
      } finally {
        lock.release();
      }
    } catch (e) {
      if (isNoSpace(e)) throw new NoSpaceError(this.root, `a copy of ${src}`, { neededBytes: treeBytes(src) }, e);
      throw e;
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
        await this.register(storePath, file, { references, ca: contentAddress('text', Hash.of('sha256', contents)), caVerified: true });
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

  /**
   * The closure of `paths` under references, sorted so that dependencies come first. A reference
   * that is not valid is an error, unless `skipInvalid` (gc: what is not there cannot be kept).
   */
  closure(paths: readonly string[], opts: { skipInvalid?: boolean } = {}): string[] {
    const seen = new Set<string>();
    const order: string[] = [];
    const visit = (p: string, stack: Set<string>) => {
      if (seen.has(p)) return;
      if (stack.has(p)) return; // self-reference
      const info = opts.skipInvalid ? this.pathInfo(p) : this.requireInfo(p);
      if (!info) return;
      stack.add(p);
      for (const r of info.references) if (r !== p) visit(r, stack);
      stack.delete(p);
      seen.add(p);
      order.push(p);
    };
    for (const p of paths) visit(p, new Set());
    return order;
  }

  /** Checks the whole store (see verifyStore): records, content, orphans, references, and with `checkContents` every hash. */
  async verify(opts: VerifyOptions = {}): Promise<VerifyReport> {
    return verifyStore(this, opts);
  }

  private rootLink(name: string): string {
    if (!name || name.includes('/') || name === '.' || name === '..' || name.includes('\0')) throw new Error(`invalid root name '${name}': use a plain file name`);
    return join(this.rootsDir, name);
  }

  /**
   * Creates a GC root named `name` (default: the path's base name) pointing at a valid path.
   * An existing root that names another path is repointed only with `force`; returns the link
   * and the store path it named before, if any.
   */
  addRoot(storePath: string, name?: string, opts: { force?: boolean } = {}): { link: string; previous?: string } {
    this.requireInfo(storePath);
    const rootName = name ?? parseStorePath(storePath, this.storeDir).baseName;
    const link = this.rootLink(rootName);
    const old = this.listRoots().find((r) => r.name === rootName);
    if (old && old.path === storePath) return { link };
    if (old && !opts.force) {
      throw new Error(`GC root '${rootName}' already points to ${old.path ?? `${old.target} (dangling)`}; use --force to repoint it to ${storePath}`);
    }
    // A new link renamed over the old one: the root never disappears in between.
    const tmp = `${link}.tmp-${process.pid}`;
    rmSync(tmp, { force: true });
    symlinkSync(this.realPath(storePath), tmp);
    renameSync(tmp, link);
    fsyncDir(this.rootsDir);
    const previous = old?.path ?? (old ? old.target : undefined);
    return previous ? { link, previous } : { link };
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

  /** Every root, dangling ones included (`path` undefined), sorted by name. */
  listRoots(): GcRoot[] {
    const out: GcRoot[] = [];
    for (const name of readdirSync(this.rootsDir).sort()) {
      if (/\.tmp-\d+$/.test(name)) continue;
      const link = join(this.rootsDir, name);
      let target: string;
      try {
        target = readlinkSync(link);
        // An indirect root points to a link outside the store, which points in.
        if (!target.startsWith(this.physicalStoreDir + '/') && name.startsWith('indirect-')) target = readlinkSync(target);
      } catch {
        continue; // not a symlink: not a root we made
      }
      let path: string | undefined;
      try {
        const p = this.toStorePath(target);
        if (this.isValid(p)) path = p;
      } catch {
        // points outside the store
      }
      out.push({ name, link, target, ...(path ? { path } : {}) });
    }
    return out;
  }

  /** Removes the root `name`; returns what it pointed to. */
  removeRoot(name: string): GcRoot {
    const root = this.listRoots().find((r) => r.name === name);
    if (!root) throw new Error(`no GC root named '${name}' (see 'store roots')`);
    unlinkSync(this.rootLink(name));
    fsyncDir(this.rootsDir);
    return root;
  }

  /** Valid store paths named by the roots directory (dangling roots are ignored), by link. */
  roots(): Map<string, string> {
    return new Map(this.listRoots().flatMap((r) => (r.path ? [[r.link, r.path] as [string, string]] : [])));
  }

  /** Paths reachable from the roots. */
  livePaths(): Set<string> {
    return new Set(this.closure([...new Set(this.roots().values())], { skipInvalid: true }));
  }

  /** Roots whose closure holds `storePath`: the reason it may not be deleted. */
  rootsReaching(storePath: string): GcRoot[] {
    return this.listRoots().filter((r) => r.path && this.closure([r.path], { skipInvalid: true }).includes(storePath));
  }

  /**
   * Deletes unreachable paths, store entries without a record (orphans of crashed adds) and the
   * temp entries of dead processes; reports each with the bytes it held.
   */
  async gc(opts: { dryRun?: boolean } = {}): Promise<GcResult> {
    // Counted before any lock is taken: the first lock would sweep the temp entries unreported.
    const temps: DeadTempEntry[] = this.tempAreas().flatMap((a) => deadTempEntries(a));
    this.swept = true;
    const live = this.livePaths();
    const dead = this.list().map((i) => i.path).filter((p) => !live.has(p));
    const deadBytes = dead.reduce((n, p) => n + treeBytes(this.realPath(p)), 0);
    const orphans = this.orphans();
    const orphanBytes = orphans.reduce((n, p) => n + treeBytes(this.realPath(p)), 0);
    const tempBytes = temps.reduce((n, t) => n + t.bytes, 0);
    if (!opts.dryRun) {
      for (const p of dead) await this.deleteUnchecked(p);
      for (const p of orphans) await this.removeOrphan(p);
      for (const t of temps) await removeTree(t.path).catch(() => undefined); // a concurrent gc may be removing it too
      const index = new ContentIndex(this);
      index.prune();
      // Cached base-layer trees (runAsRoot lower dirs) of layers no valid archive holds any more.
      await new LayerTreeCache(this).prune((diffId) => index.lookup(diffId) !== undefined);
    }
    return { dead, orphans, tempDirs: temps.map((t) => t.path), deadBytes, orphanBytes, tempBytes, bytesFreed: deadBytes + orphanBytes + tempBytes };
  }

  /** Store entries with no usable record, not being added right now by a live process. */
  orphans(): string[] {
    return this.storeEntries().map((b) => `${this.storeDir}/${b}`).filter((p) => this.readRecord(p).state !== 'ok' && !this.pathBusy(p));
  }

  private async removeOrphan(storePath: string): Promise<void> {
    const lock = await this.lockPath(storePath);
    try {
      if (!this.isValid(storePath)) await removeTree(this.realPath(storePath));
    } finally {
      lock.release();
    }
  }

  /** Deletes the given paths; refuses any that is live (reachable from a root or referenced by a valid path). */
  async delete(paths: readonly string[]): Promise<void> {
    const live = this.livePaths();
    const doomed = new Set(paths);
    for (const p of paths) {
      this.requireInfo(p);
      if (live.has(p)) {
        const roots = this.rootsReaching(p);
        const by = roots.map((r) => (r.path === p ? `'${r.name}'` : `'${r.name}' (via ${r.path})`));
        throw new Error(`cannot delete '${p}': it is protected by GC root ${by.join(', ')}; remove the root first ('store remove-root ${roots[0]?.name ?? 'NAME'}')`);
      }
      const referrer = this.list().find((i) => i.path !== p && !doomed.has(i.path) && i.references.includes(p));
      if (referrer) throw new Error(`cannot delete '${p}': it is still referenced by '${referrer.path}'`);
    }
    for (const p of paths) await this.deleteUnchecked(p);
  }

  /** Deletes a path whatever refers to it (verify --repair --delete-invalid): record first, then content. */
  async deleteInvalid(storePath: string): Promise<void> {
    await this.deleteUnchecked(storePath);
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
}
