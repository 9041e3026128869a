import { chmodSync, closeSync, fsyncSync, lstatSync, lutimesSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { chmod, rm } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';

/** Paths are bytes here: a name that is not UTF-8 must survive canonicalisation and removal. */
type BytePath = string | Buffer;
const child = (dir: BytePath, name: Buffer): Buffer => Buffer.concat([Buffer.from(dir), Buffer.from('/'), name]);

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a file so that readers see either the old or the new content, never a mix. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/**
 * Makes a tree canonical as Nix does — no write bits (files 0444 or 0555, directories 0555),
 * mtime 1 — and flushes it to disk, so a crash after the rename cannot expose half-written
 * content under a valid-looking path. The walk is synchronous (thousands of small async calls
 * cost seconds on big trees); a large tree is flushed with one syncfs of its file system
 * (`sync -f`) rather than an fsync per file, falling back to per-file fsync without `sync`.
 */
export async function canonicalise(path: BytePath): Promise<void> {
  return canonicaliseAll([path]);
}

/**
 * canonicalise() for several trees with one flush between them: a closure imported at once
 * pays for one syncfs, not one per path (each syncfs also commits the journal, and on a slow
 * disk that is most of an import's time).
 */
export async function canonicaliseAll(paths: readonly BytePath[]): Promise<void> {
  let entries = 0;
  for (const p of paths) entries += canonicaliseTree(p);
  // A few files: fsync each (a syncfs would also wait for unrelated dirty data). Many: syncfs.
  if (entries <= 64) {
    for (const p of paths) fsyncTree(p);
    return;
  }
  // One syncfs per file system the trees are on (normally just the store's).
  const perDevice = new Map<number, string>();
  for (const p of paths) perDevice.set(lstatSync(p).dev, p.toString());
  const r = spawnSync('sync', ['-f', ...perDevice.values()], { stdio: 'ignore' });
  if (r.status !== 0) for (const p of paths) fsyncTree(p);
}

/** Canonicalises in place and returns how many entries the tree has. */
function canonicaliseTree(path: BytePath): number {
  const st = lstatSync(path);
  let entries = 1;
  if (st.isSymbolicLink()) {
    lutimesSync(path, 1, 1);
    return entries;
  }
  if (st.isDirectory()) {
    for (const name of readdirSync(path, { encoding: 'buffer' })) entries += canonicaliseTree(child(path, name));
    chmodSync(path, 0o555);
  } else if (st.isFile()) {
    chmodSync(path, st.mode & 0o100 ? 0o555 : 0o444);
  } else {
    throw new Error(`file '${path.toString()}' has an unsupported type`);
  }
  lutimesSync(path, 1, 1);
  return entries;
}

function fsyncTree(path: BytePath): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) for (const name of readdirSync(path, { encoding: 'buffer' })) fsyncTree(child(path, name));
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Removes a tree even when canonicalisation made it read-only. */
export async function removeTree(path: string): Promise<void> {
  try {
    const st = lstatSync(path);
    if (st.isDirectory()) await makeWritable(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  await rm(path, { recursive: true, force: true });
}

async function makeWritable(dir: BytePath): Promise<void> {
  await chmod(dir, 0o755);
  for (const name of readdirSync(dir, { encoding: 'buffer' })) {
    const p = child(dir, name);
    if (lstatSync(p).isDirectory()) await makeWritable(p);
  }
}

/** removeTree() for signal handlers, where nothing asynchronous runs any more. */
export function removeTreeSync(path: string): void {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return;
  if (st.isDirectory()) makeWritableSync(path);
  rmSync(path, { recursive: true, force: true });
}

function makeWritableSync(dir: BytePath): void {
  chmodSync(dir, 0o755);
  for (const name of readdirSync(dir, { encoding: 'buffer' })) {
    const p = child(dir, name);
    if (lstatSync(p).isDirectory()) makeWritableSync(p);
  }
}

/** The bytes a tree holds (file sizes and symlink targets): what removing it frees, as gc reports. */
export function treeBytes(path: BytePath): number {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  let names: Buffer[];
  try {
    names = readdirSync(path, { encoding: 'buffer' });
  } catch {
    return 0; // removed meanwhile (another process's gc): nothing left to count
  }
  let total = 0;
  for (const name of names) total += treeBytes(child(path, name));
  return total;
}
