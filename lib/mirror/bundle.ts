// Bundles in the `nix-store --export` format (SPEC.md §8), streamed both ways. Per path:
// int(1) NAR int(0x4558494e) str(path) int(#refs) str(ref)… str(deriver|"") int(0); then int(0).
import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { Hash, parseHash } from '../hash/index.js';
import { dumpPath, encodeStr } from '../nar/index.js';
import { restoreNarQuickly } from './restore.js';
import { SILENT_PROGRESS, type ProgressSink } from '../recipe/index.js';
import { fsyncDir, inferContentAddress, isStorePath, parseStorePath, type LocalStore } from '../store/index.js';
import { ByteReader } from './byte-reader.js';

import { UNVERIFIED_NOTE, type ImportedPath } from './import.js';
import { frameNar } from './nar-frame.js';
import { printable } from '../text/index.js';

export const EXPORT_MAGIC = 0x4558494e;
const MAX_REFS = 1_000_000;

function int(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

function write(out: Writable, chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => out.write(chunk, (err) => (err ? reject(err) : resolve())));
}

/**
 * Writes the closure of `paths` to `out` in dependency order. Each chunk is written before the
 * next is read (dumpPath reuses its buffers), and each NAR is checked against the store's record.
 */
export async function writeBundle(store: LocalStore, paths: readonly string[], out: Writable, opts: { progress?: ProgressSink } = {}): Promise<string[]> {
  const progress = opts.progress ?? SILENT_PROGRESS;
  const closure = store.closure(paths);
  for (const p of closure) {
    const info = store.requireSound(p);
    await write(out, int(1));
    const h = createHash('sha256');
    let size = 0;
    progress.start(p, parseStorePath(p, store.storeDir).name, info.narSize);
    try {
      for await (const chunk of dumpPath(store.realPath(p))) {
        h.update(chunk);
        size += chunk.length;
        await write(out, chunk);
        progress.update(p, size);
      }
    } finally {
      progress.finish(p);
    }
    const got = new Hash('sha256', h.digest());
    if (!got.equals(parseHash(info.narHash)) || size !== info.narSize) {
      throw new Error(`store path ${p} is damaged: its NAR hash is ${got.sri}, the store recorded ${parseHash(info.narHash).sri}; run 'store verify'`);
    }
    const refs = [...info.references].sort();
    const trailer = [int(EXPORT_MAGIC), encodeStr(p), int(refs.length), ...refs.map((r) => encodeStr(r)), encodeStr(info.deriver ?? ''), int(0)];
    await write(out, Buffer.concat(trailer));
  }
  await write(out, int(0));
  return closure;
}

/** writeBundle into `file`, atomically: a temp file beside it, fsync'd, renamed into place. */
export async function writeBundleFile(store: LocalStore, paths: readonly string[], file: string, opts: { progress?: ProgressSink } = {}): Promise<string[]> {
  const tmp = join(dirname(file), `.${process.pid}-${Math.random().toString(36).slice(2)}.bundle.tmp`);
  try {
    const out = createWriteStream(tmp);
    const opened = new Promise<void>((resolve, reject) => out.once('open', () => resolve()).once('error', reject));
    await opened;
    const closure = await writeBundle(store, paths, out, opts);
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    fsyncDir(dirname(file));
    return closure;
  } finally {
    rmSync(tmp, { force: true });
  }
}

export interface ReadBundleOptions {
  /** For messages: the file or "stdin". */
  where?: string;
  progress?: ProgressSink;
  log?: (line: string) => void;
}

/**
 * Imports every path of a bundle, in the order given (dependencies first, as Nix writes them).
 * Each path is restored through the NAR reader into a temp dir and registered only once its
 * whole entry has been read and its references are valid: all or nothing per path. Paths whose
 * name and content prove a content address get it recorded again (the format drops it).
 */
export async function readBundle(store: LocalStore, input: AsyncIterable<Uint8Array>, opts: ReadBundleOptions = {}): Promise<ImportedPath[]> {
  const where = `bundle ${opts.where ?? ''}`.trim();
  const progress = opts.progress ?? SILENT_PROGRESS;
  const r = new ByteReader(input, where);
  const results: ImportedPath[] = [];
  for (let index = 1; ; index++) {
    const at = r.offset;
    const m = await r.read(8);
    const marker = m.readUInt32LE(4) === 0 ? m.readUInt32LE(0) : -1;
    if (marker === 0) break;
    if (marker !== 1) throw new Error(`${where}: expected 1 or 0 at byte ${at}, found ${m.toString('hex')} (not a nix-store --export stream?)`);
    const tmp = store.makeTempDir('unbundle');
    const out = join(tmp, 'out');
    try {
      const h = createHash('sha256');
      let size = 0;
      const id = `${where}#${index}`;
      progress.start(id, `path ${index}`);
      const hashed = async function* (): AsyncGenerator<Buffer> {
        for await (const c of frameNar(r)) {
          h.update(c);
          size += c.length;
          progress.update(id, size);
          yield c;
        }
      };
      try {
        await restoreNarQuickly(hashed(), out);
      } catch (e) {
        throw new Error(`${where}: entry ${index} (at byte ${at}): ${(e as Error).message}`);
      } finally {
        progress.finish(id);
      }
      const magicAt = r.offset;
      if ((await r.readInt()) !== EXPORT_MAGIC) throw new Error(`${where}: entry ${index} lacks the export magic at byte ${magicAt}`);
      const path = (await r.readStr(4096)).toString('utf8');
      if (!isStorePath(path, store.storeDir)) throw new Error(`${where}: entry ${index} names '${printable(path)}', not a path in ${store.storeDir}`);
      const nrefs = await r.readInt();
      if (nrefs > MAX_REFS) throw new Error(`${where}: ${path} claims ${nrefs} references`);
      const refs: string[] = [];
      for (let i = 0; i < nrefs; i++) {
        const ref = (await r.readStr(4096)).toString('utf8');
        if (!isStorePath(ref, store.storeDir)) throw new Error(`${where}: ${path} has reference '${printable(ref)}', not a path in ${store.storeDir}`);
        refs.push(ref);
      }
      const deriver = (await r.readStr(4096)).toString('utf8');
      if (deriver && !isStorePath(deriver, store.storeDir)) throw new Error(`${where}: ${path} has deriver '${printable(deriver)}', not a store path`);
      const hasSig = await r.readInt();
      if (hasSig === 1) await r.readStr(4096); // legacy signature field: ignored, as Nix does
      else if (hasSig !== 0) throw new Error(`${where}: ${path}: bad signature marker ${hasSig}`);
      const missing = refs.find((x) => x !== path && !store.isValid(x));
      if (missing) throw new Error(`${where}: ${path} refers to ${missing}, which is neither valid nor earlier in the bundle`);
      if (store.isValid(path)) {
        results.push({ path, imported: false, verified: store.requireInfo(path).caVerified === true });
        continue;
      }
      const narHash = new Hash('sha256', h.digest());
      // The format carries no content address: one proven by the name and the content is checked.
      const ca = await inferContentAddress(path, narHash, refs, out, store.storeDir);
      const lock = await store.lockPath(path);
      try {
        await store.register(path, out, { references: refs, narHash, narSize: size, ...(ca ? { ca, caVerified: true } : {}), ...(deriver ? { deriver } : {}) });
      } finally {
        lock.release();
      }
      opts.log?.(`imported ${path}${ca ? '' : ` (${UNVERIFIED_NOTE})`}`);
      results.push({ path, imported: true, verified: ca !== undefined });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  if (!(await r.atEnd())) throw new Error(`${where}: unexpected bytes after the end marker at byte ${r.offset}`);
  return results;
}
