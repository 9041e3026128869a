// Writes store paths (with their closures) as a Nix binary cache directory (SPEC.md §8).
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Hash, parseHash } from '../hash/index.js';
import { dumpPath } from '../nar/index.js';
import { SILENT_PROGRESS, type ProgressSink } from '../recipe/index.js';
import { fsyncDir, parseStorePath, writeFileAtomic, type LocalStore, type PathInfo } from '../store/index.js';
import { DEFAULT_COMPRESSION, compressor, narExtension, type Compression } from './compression.js';
import { signText, type SecretKey } from './keys.js';
import { cacheInfoStoreDir, fingerprint, formatCacheInfo, formatNarInfo, type NarInfo } from './narinfo.js';

export interface ExportOptions {
  compression?: Compression;
  /** Adds this key's signature to every narinfo written (besides the path's own signatures). */
  signKey?: SecretKey;
  progress?: ProgressSink;
  log?: (line: string) => void;
}

export interface ExportedPath {
  path: string;
  /** False when the cache already had the path (its narinfo exists) and nothing was written. */
  written: boolean;
  narinfo: string;
  narSize: number;
  fileSize?: number;
}

/** Counts and hashes what passes through. */
class Meter extends Transform {
  private readonly h = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.h.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
  digest(): Hash {
    return new Hash('sha256', this.h.digest());
  }
}

/** The NAR of a store path, hashed as it is read; chunks are copied because dumpPath reuses them. */
async function* narOf(real: string, meter: { h: ReturnType<typeof createHash>; size: number }, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of dumpPath(real)) {
    meter.h.update(chunk);
    meter.size += chunk.length;
    onBytes(meter.size);
    yield Buffer.from(chunk);
  }
}

/** Writes `nix-cache-info` unless present; refuses a cache made for another store directory. */
export function prepareCacheDir(dir: string, storeDir: string): void {
  mkdirSync(join(dir, 'nar'), { recursive: true });
  const infoFile = join(dir, 'nix-cache-info');
  if (existsSync(infoFile)) {
    const have = cacheInfoStoreDir(readFileSync(infoFile, 'utf8'));
    if (have !== storeDir) throw new Error(`binary cache ${dir} is for store ${have}, not ${storeDir}`);
    return;
  }
  writeFileAtomic(infoFile, formatCacheInfo(storeDir));
}

/**
 * Compresses one path's NAR into `<dir>/nar/<nix32 FileHash>.nar<ext>` and returns its narinfo
 * (not yet written). The NAR is checked against the store's recorded hash while it streams, so a
 * damaged store path is never exported.
 */
async function writeNar(store: LocalStore, info: PathInfo, dir: string, compression: Compression, progress: ProgressSink): Promise<NarInfo> {
  const tmp = join(dir, 'nar', `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const nar = { h: createHash('sha256'), size: 0 };
  const file = new Meter();
  progress.start(info.path, parseStorePath(info.path, store.storeDir).name, info.narSize);
  try {
    const source = narOf(store.realPath(info.path), nar, (n) => progress.update(info.path, n));
    const comp = compressor(compression);
    const out = createWriteStream(tmp, { flush: true });
    await (comp ? pipeline(source, comp, file, out) : pipeline(source, file, out));
    const narHash = new Hash('sha256', nar.h.digest());
    const recorded = parseHash(info.narHash);
    if (!narHash.equals(recorded) || nar.size !== info.narSize) {
      throw new Error(`store path ${info.path} is damaged: its NAR hash is ${narHash.sri} (${nar.size} bytes), the store recorded ${recorded.sri} (${info.narSize} bytes); run 'store verify'`);
    }
    const fileHash = file.digest();
    const url = `nar/${fileHash.nix32}.nar${narExtension(compression)}`;
    renameSync(tmp, join(dir, url));
    const ni: NarInfo = {
      storePath: info.path, url, compression, fileHash, fileSize: file.size,
      narHash, narSize: nar.size, references: [...info.references].sort(), sigs: [],
    };
    if (info.deriver) ni.deriver = info.deriver;
    if (info.ca) ni.ca = info.ca;
    return ni;
  } finally {
    rmSync(tmp, { force: true });
    progress.finish(info.path);
  }
}

/**
 * Exports the closure of `paths` (store paths) into the binary cache directory `dir`,
 * dependencies first. Paths the cache already has are skipped. Each narinfo is written last and
 * atomically, after its NAR is complete on disk, so a reader never sees a narinfo without its NAR.
 */
export async function exportToCache(store: LocalStore, paths: readonly string[], dir: string, opts: ExportOptions = {}): Promise<ExportedPath[]> {
  const compression = opts.compression ?? DEFAULT_COMPRESSION;
  const progress = opts.progress ?? SILENT_PROGRESS;
  prepareCacheDir(dir, store.storeDir);
  const results: ExportedPath[] = [];
  for (const p of store.closure(paths)) {
    const info = store.requireSound(p);
    const narinfoFile = join(dir, `${parseStorePath(p, store.storeDir).hashPart}.narinfo`);
    if (existsSync(narinfoFile)) {
      results.push({ path: p, written: false, narinfo: narinfoFile, narSize: info.narSize });
      continue;
    }
    const ni = await writeNar(store, info, dir, compression, progress);
    const sigs = new Set(info.signatures);
    if (opts.signKey) sigs.add(signText(opts.signKey, fingerprint(ni.storePath, ni.narHash, ni.narSize, ni.references)));
    ni.sigs = [...sigs].sort();
    fsyncDir(join(dir, 'nar'));
    writeFileAtomic(narinfoFile, formatNarInfo(ni));
    results.push({ path: p, written: true, narinfo: narinfoFile, narSize: ni.narSize, fileSize: ni.fileSize ?? 0 });
  }
  return results;
}
