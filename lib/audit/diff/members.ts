import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';
import { decompressLayer } from '../../image/index.js';

/** A member of an archive or a file of a tree, as a diff compares it. */
export interface Member {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch (trees: not compared, store paths all have mtime 1). */
  mtime: number;
  linkname?: string;
  /** Of the content, for regular files. */
  sha256?: string;
  /** Devices: major,minor. */
  device?: string;
}

export interface MemberList {
  members: Map<string, Member>;
  /** Names that occur more than once (crane validate reports them: loaders disagree on which wins). */
  duplicates: string[];
}

/** Where the normalised tar name of an entry is: no leading `./`, no trailing `/`. */
const normalName = (p: string): string => p.replace(/^(\.\/)+/, '').replace(/\/+$/, '') || '.';

/**
 * Streams a tar (any of none/gzip/zstd) through tar's parser; `each` sees every member's
 * metadata and may consume its content (otherwise it is drained).
 */
export async function forEachTarMember(file: string, each: (m: Member, content: ReadEntry) => Promise<void> | void): Promise<void> {
  const parser = new Parser({ strict: true });
  const pending: Promise<void>[] = [];
  parser.on('entry', (entry: ReadEntry) => {
    const m: Member = {
      name: normalName(entry.path),
      type: entry.type,
      mode: entry.mode ?? 0,
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      size: entry.size,
      mtime: entry.mtime ? Math.floor(entry.mtime.getTime() / 1000) : 0,
      ...(entry.linkpath ? { linkname: entry.linkpath } : {}),
      ...(entry.type === 'CharacterDevice' || entry.type === 'BlockDevice' ? { device: `${entry.header.devmaj ?? 0},${entry.header.devmin ?? 0}` } : {}),
    };
    const done = Promise.resolve(each(m, entry)).then(() => { entry.resume(); });
    pending.push(done);
  });
  const finished = new Promise<void>((resolve, reject) => {
    parser.on('end', () => resolve());
    parser.on('error', reject);
  });
  for await (const chunk of decompressLayer(createReadStream(file))) {
    if (!parser.write(chunk)) await once(parser, 'drain');
  }
  parser.end();
  await finished;
  await Promise.all(pending);
}

/** Every member of a tar with the sha256 of its content. */
export async function listTarMembers(file: string): Promise<MemberList> {
  const members = new Map<string, Member>();
  const duplicates = new Set<string>();
  await forEachTarMember(file, (m, content) => {
    if (members.has(m.name)) duplicates.add(m.name);
    members.set(m.name, m);
    if (m.type !== 'File' && m.type !== 'OldFile' && m.type !== 'ContiguousFile') return;
    const h = createHash('sha256');
    return new Promise<void>((resolve, reject) => {
      content.on('data', (c: Buffer) => h.update(c));
      content.on('end', () => { m.sha256 = h.digest('hex'); resolve(); });
      content.on('error', reject);
    });
  });
  return { members, duplicates: [...duplicates].sort() };
}

/** Writes the content of the named members to files in `dir` (named by index in `names`). */
export async function extractTarMembers(file: string, names: readonly string[], dir: string): Promise<Map<string, string>> {
  const wanted = new Map(names.map((n, i) => [n, join(dir, String(i))]));
  const written = new Map<string, string>();
  await forEachTarMember(file, async (m, content) => {
    const dest = wanted.get(m.name);
    if (!dest) return;
    await pipeline(content, createWriteStream(dest));
    written.set(m.name, dest);
  });
  return written;
}

/** Every entry of a directory tree (recursive, sorted by name), like the members of a tar. */
export async function listTree(root: string): Promise<MemberList> {
  const members = new Map<string, Member>();
  const visit = async (rel: string): Promise<void> => {
    const abs = rel === '.' ? root : join(root, rel);
    const st = await fsp.lstat(abs);
    const m: Member = { name: rel, type: 'File', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime: Math.floor(st.mtimeMs / 1000) };
    if (st.isDirectory()) {
      m.type = 'Directory';
      members.set(rel, m);
      const names = (await fsp.readdir(abs)).sort();
      for (const n of names) await visit(rel === '.' ? n : `${rel}/${n}`);
      return;
    }
    if (st.isSymbolicLink()) {
      m.type = 'SymbolicLink';
      m.linkname = await fsp.readlink(abs);
    } else if (st.isFile()) {
      m.size = st.size;
      m.sha256 = await sha256File(abs);
    } else {
      m.type = st.isCharacterDevice() ? 'CharacterDevice' : st.isBlockDevice() ? 'BlockDevice' : st.isFIFO() ? 'FIFO' : 'Socket';
    }
    members.set(rel, m);
  };
  await visit('.');
  return { members, duplicates: [] };
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

/** The first byte offset at which two files differ (the shorter one's length if one is a prefix), or undefined if equal. */
export async function firstDifference(a: string, b: string): Promise<number | undefined> {
  const [fa, fb] = await Promise.all([fsp.open(a), fsp.open(b)]);
  try {
    const size = 1 << 20;
    const ba = Buffer.alloc(size);
    const bb = Buffer.alloc(size);
    for (let pos = 0; ; pos += size) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, size, pos), fb.read(bb, 0, size, pos)]);
      const n = Math.min(ra.bytesRead, rb.bytesRead);
      for (let i = 0; i < n; i++) if (ba[i] !== bb[i]) return pos + i;
      if (ra.bytesRead !== rb.bytesRead) return pos + n;
      if (n === 0) return undefined;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}
