import { closeSync, fsyncSync, lstatSync, openSync, readdirSync, renameSync, writeSync } from 'node:fs';
import { chmod, lstat, lutimes, open, readdir, rm } from 'node:fs/promises';
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
 * Makes a tree canonical as Nix does: no write bits (files 0444 or 0555, directories 0555),
 * mtime 1, and flushes every regular file to disk so a crash after the rename cannot expose
 * half-written content under a valid-looking path.
 */
export async function canonicalise(path: BytePath): Promise<void> {
  const st = await lstat(path);
  if (st.isSymbolicLink()) {
    await lutimes(path, 1, 1);
    return;
  }
  if (st.isDirectory()) {
    for (const name of await readdir(path, { encoding: 'buffer' })) await canonicalise(child(path, name));
    await chmod(path, 0o555);
  } else if (st.isFile()) {
    const fh = await open(path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await chmod(path, st.mode & 0o100 ? 0o555 : 0o444);
  } else {
    throw new Error(`file '${path.toString()}' has an unsupported type`);
  }
  await lutimes(path, 1, 1);
  if (st.isDirectory()) {
    const fh = await open(path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
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
