// Reads paths from a binary cache into the store: every narinfo checked (paths, URL, signature,
// CA), every NAR checked (FileHash/FileSize, NarHash/NarSize) and validated by the NAR reader.
// The whole closure is fetched into temp dirs first and registered only when all of it is good,
// so a bad entry leaves the store exactly as it was.
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Hash } from '../hash/index.js';
import { mapLimit } from './parallel.js';
import { restoreNarQuickly } from './restore.js';
import { SILENT_PROGRESS, type ProgressSink } from '../recipe/index.js';
import { checkContentAddressContent, checkContentAddressPath, inferContentAddress, parseStorePath, type LocalStore } from '../store/index.js';
import type { BinaryCache } from './cache-source.js';
import { decompressor } from './compression.js';

import { verifyText, type PublicKey } from './keys.js';
import { cacheInfoStoreDir, narInfoFingerprint, parseNarInfo, type NarInfo } from './narinfo.js';

export interface ImportOptions {
  /** Keys whose signatures are trusted. */
  trustedKeys?: readonly PublicKey[];
  /** Require a valid signature by a trusted key on every narinfo (default true). */
  checkSigs?: boolean;
  progress?: ProgressSink;
  log?: (line: string) => void;
}

export interface ImportedPath {
  path: string;
  /** False when the path was already valid in the store. */
  imported: boolean;
  /**
   * Whether its content was hashed against a content address (its CA, or one its name and
   * content prove). An unverified path answers no pin until a pin or `verify --check-contents` hashed it.
   */
  verified?: boolean;
}

/** How an import says that a path has nothing proving its bytes are what its name promises. */
export const UNVERIFIED_NOTE = 'unverified: no content address proven; it answers no pin until its content is hashed against one';

const HASH_PART = /^[0-9a-df-np-sv-z]{32}$/;

/** The hash part named by a store path, a base name or a bare hash part. */
function hashPartOf(arg: string, storeDir: string): string {
  if (HASH_PART.test(arg)) return arg;
  return parseStorePath(arg, storeDir).hashPart;
}

/** Passes `src` through a transform, surfacing errors from either side while iterating. */
async function* through(src: AsyncIterable<Buffer>, t: Transform): AsyncGenerator<Buffer> {
  const input = Readable.from(src, { objectMode: false });
  const done = pipeline(input, t).then(() => undefined, (e: unknown) => e as Error);
  try {
    for await (const chunk of t) yield chunk as Buffer;
  } finally {
    input.destroy();
    t.destroy();
  }
  const err = await done;
  if (err) throw err;
}

/** Checks the StoreDir a cache declares (a cache without nix-cache-info is taken as /nix/store). */
export async function checkCacheStoreDir(cache: BinaryCache, storeDir: string): Promise<void> {
  const text = await cache.readText('nix-cache-info');
  if (text === undefined) {
    // Tolerated when there are narinfos (hand-made caches); a directory with neither is no cache.
    if (cache.listHashParts && (await cache.listHashParts()).length === 0) throw new Error(`no binary cache at ${cache.display} (no nix-cache-info)`);
    return;
  }
  const have = cacheInfoStoreDir(text);
  if (have !== storeDir) throw new Error(`binary cache ${cache.display} is for store ${have}, not ${storeDir}`);
}

/** The narinfo for a hash part, checked to describe that hash part; undefined if absent. */
export async function readNarInfo(cache: BinaryCache, hashPart: string, storeDir: string): Promise<NarInfo | undefined> {
  const rel = `${hashPart}.narinfo`;
  const text = await cache.readText(rel);
  if (text === undefined) return undefined;
  const where = `${cache.display}/${rel}`;
  const ni = parseNarInfo(text, where, storeDir);
  if (parseStorePath(ni.storePath, storeDir).hashPart !== hashPart) throw new Error(`${where} describes ${ni.storePath}, another path`);
  return ni;
}

/** Throws unless the narinfo carries a valid signature by a trusted key (or checking is off). */
export function checkSignature(ni: NarInfo, where: string, opts: ImportOptions): void {
  if (opts.checkSigs === false) return;
  const keys = opts.trustedKeys ?? [];
  const fp = narInfoFingerprint(ni);
  if (ni.sigs.some((s) => verifyText(fp, s, keys))) return;
  const by = ni.sigs.map((s) => s.slice(0, Math.max(0, s.indexOf(':')))).filter(Boolean);
  const trusted = keys.map((k) => k.name);
  const what = by.length ? `signed only by ${by.join(', ')}, and none verifies with a trusted key` : 'unsigned';
  throw new Error(`${where}: ${ni.storePath} is ${what} (trusted: ${trusted.length ? trusted.join(', ') : 'none'}); add --trusted-key NAME:KEY or use --no-check-sigs`);
}

/**
 * Downloads the NAR a narinfo points to and restores it at `dest` (which must not exist),
 * checking FileSize/FileHash on the way in and NarSize/NarHash on the way out. Sizes are
 * enforced while streaming, so an endless or oversized NAR stops at once. On any failure `dest`
 * does not exist afterwards.
 */
export async function fetchNar(cache: BinaryCache, ni: NarInfo, dest: string, onBytes: (narBytes: number) => void = () => undefined): Promise<void> {
  const where = `${ni.storePath} from ${cache.display}/${ni.url}`;
  const fileH = createHash('sha256');
  const narH = createHash('sha256');
  let fileSize = 0;
  let narSize = 0;
  try {
    const decomp = decompressor(ni.compression, `${cache.display}/${ni.url}`);
    const raw = await cache.open(ni.url);
    const fileBytes = async function* (): AsyncGenerator<Buffer> {
      for await (const c of raw) {
        fileSize += c.length;
        if (ni.fileSize !== undefined && fileSize > ni.fileSize) throw new Error(`the file is larger than its FileSize ${ni.fileSize}`);
        fileH.update(c);
        yield c;
      }
    };
    const decompressed = decomp ? through(fileBytes(), decomp) : fileBytes();
    const narBytes = async function* (): AsyncGenerator<Buffer> {
      for await (const c of decompressed) {
        narSize += c.length;
        if (narSize > ni.narSize) throw new Error(`the NAR is larger than its NarSize ${ni.narSize}`);
        narH.update(c);
        onBytes(narSize);
        yield c;
      }
    };
    await restoreNarQuickly(narBytes(), dest);
    if (ni.fileSize !== undefined && fileSize !== ni.fileSize) throw new Error(`file is ${fileSize} bytes, its FileSize says ${ni.fileSize} (truncated?)`);
    if (ni.fileHash) {
      const got = new Hash('sha256', fileH.digest());
      if (!got.equals(ni.fileHash)) throw new Error(`FileHash mismatch: narinfo says ${ni.fileHash.sri}, got ${got.sri}`);
    }
    if (narSize !== ni.narSize) throw new Error(`NAR is ${narSize} bytes, its NarSize says ${ni.narSize} (truncated?)`);
    const got = new Hash('sha256', narH.digest());
    if (!got.equals(ni.narHash)) throw new Error(`NarHash mismatch: narinfo says ${ni.narHash.sri}, got ${got.sri}`);
  } catch (e) {
    rmSync(dest, { recursive: true, force: true });
    throw new Error(`refusing ${where}: ${(e as Error).message.split('\n')[0]}`);
  }
}

interface Planned {
  ni: NarInfo;
  where: string;
}

/**
 * The narinfos of `hashParts` and of every reference not valid in the store yet, dependencies
 * first, each checked (paths, URL, signature, CA). Nothing is downloaded.
 */
export async function planImport(store: LocalStore, cache: BinaryCache, hashParts: readonly string[], opts: ImportOptions): Promise<Planned[]> {
  const order: Planned[] = [];
  const done = new Set<string>();
  // The paths being visited, outermost first: meeting one of them again is a reference cycle,
  // which Nix refuses (a path's references must be valid before it is).
  const visiting: { hp: string; path: string }[] = [];
  const visit = async (hp: string, neededBy?: string): Promise<void> => {
    if (done.has(hp)) return;
    const again = visiting.findIndex((v) => v.hp === hp);
    if (again >= 0) {
      const chain = [...visiting.slice(again).map((v) => v.path), visiting[again]!.path];
      throw new Error(`binary cache ${cache.display}: reference cycle ${chain.join(' -> ')} (Nix refuses cycles; the cache is damaged)`);
    }
    const ni = await readNarInfo(cache, hp, store.storeDir);
    if (!ni) throw new Error(`binary cache ${cache.display} has no ${hp}.narinfo${neededBy ? ` (a reference of ${neededBy})` : ''}`);
    const where = `${cache.display}/${hp}.narinfo`;
    if (!store.isValid(ni.storePath)) {
      visiting.push({ hp, path: ni.storePath });
      for (const r of ni.references) {
        if (r !== ni.storePath && !store.isValid(r)) await visit(parseStorePath(r, store.storeDir).hashPart, ni.storePath);
      }
      visiting.pop();
      checkSignature(ni, where, opts);
      if (ni.ca) checkContentAddressPath(ni.storePath, ni.ca, ni.references, store.storeDir, where);
      order.push({ ni, where });
    }
    done.add(hp);
  };
  for (const hp of hashParts) await visit(hp);
  return order;
}

/** Fetches every planned path into a temp dir, then registers them all, dependencies first. */
async function fetchAndRegister(store: LocalStore, cache: BinaryCache, plan: readonly Planned[], opts: ImportOptions): Promise<{ path: string; verified: boolean }[]> {
  const progress = opts.progress ?? SILENT_PROGRESS;
  const temps: string[] = [];
  try {
    // Two downloads at a time overlap one's network or disk waits with the other's decoding.
    const fetched = await mapLimit(plan, 2, async ({ ni, where }) => {
      const tmp = store.makeTempDir('import');
      temps.push(tmp);
      const out = join(tmp, 'out');
      progress.start(ni.storePath, parseStorePath(ni.storePath, store.storeDir).name, ni.narSize);
      try {
        await fetchNar(cache, ni, out, (n) => progress.update(ni.storePath, n));
      } finally {
        progress.finish(ni.storePath);
      }
      let ca = ni.ca;
      if (ca) {
        const parsed = checkContentAddressPath(ni.storePath, ca, ni.references, store.storeDir, where);
        await checkContentAddressContent(parsed, ni.narHash, out, where);
      } else {
        ca = await inferContentAddress(ni.storePath, ni.narHash, ni.references, out, store.storeDir);
      }
      return { ni, out, ca };
    });
    // Independent paths register concurrently; a path waits for its references, so a valid
    // path never refers to one that is not valid yet.
    const registering = new Map<string, Promise<void>>();
    await store.prepare(fetched.map((f) => f.out));
    await mapLimit(fetched, 4, async ({ ni, out, ca }) => {
      const task = (async () => {
        await Promise.all(ni.references.filter((r) => r !== ni.storePath).map((r) => registering.get(r)));
        const lock = await store.lockPath(ni.storePath);
        try {
          const base = { references: ni.references, signatures: ni.sigs, narHash: ni.narHash, narSize: ni.narSize };
          await store.register(ni.storePath, out, { ...base, prepared: true, ...(ca ? { ca, caVerified: true } : {}), ...(ni.deriver ? { deriver: ni.deriver } : {}) });
        } finally {
          lock.release();
        }
        opts.log?.(`imported ${ni.storePath}${ca ? '' : ` (${UNVERIFIED_NOTE})`}`);
      })();
      task.catch(() => undefined); // a dependent awaiting it reports the failure too; mapLimit reports the first
      registering.set(ni.storePath, task);
      await task;
    });
    return fetched.map((f) => ({ path: f.ni.storePath, verified: f.ca !== undefined }));
  } finally {
    for (const t of temps) rmSync(t, { recursive: true, force: true });
  }
}

/** The valid store paths among these hash parts. */
function validWithHashParts(store: LocalStore, hashParts: readonly string[]): string[] {
  const wanted = new Set(hashParts);
  return store.list().map((i) => i.path).filter((p) => wanted.has(parseStorePath(p, store.storeDir).hashPart));
}

/**
 * Imports `paths` (store paths, base names or hash parts; or every narinfo of a directory cache
 * with 'all') and their closures from `cache`. Returns every requested path and closure member
 * considered, in dependency order.
 */
export async function importFromCache(store: LocalStore, cache: BinaryCache, paths: readonly string[] | 'all', opts: ImportOptions = {}): Promise<ImportedPath[]> {
  await checkCacheStoreDir(cache, store.storeDir);
  let hashParts: string[];
  if (paths === 'all') {
    if (!cache.listHashParts) throw new Error(`binary cache ${cache.display} cannot be listed: name the paths to import (--all needs a directory)`);
    hashParts = await cache.listHashParts();
  } else {
    hashParts = paths.map((p) => hashPartOf(p, store.storeDir));
  }
  const plan = await planImport(store, cache, hashParts, opts);
  const imported = new Map((await fetchAndRegister(store, cache, plan, opts)).map((x) => [x.path, x.verified]));
  // With --all, the cache's paths the store already has are reported too (as not imported).
  const present = paths === 'all' ? validWithHashParts(store, hashParts) : [];
  const requested = paths === 'all' ? present : paths.filter((p) => !HASH_PART.test(p)).map((p) => store.toStorePath(p));
  const all = [...plan.map((p) => p.ni.storePath), ...requested.filter((p) => !imported.has(p))];
  return [...new Set(all)].map((path) => ({
    path, imported: imported.has(path), verified: imported.get(path) ?? store.pathInfo(path)?.caVerified === true,
  }));
}
