import { createReadStream, createWriteStream, chmodSync, lchownSync, lutimesSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { decompressLayer } from '../image/index.js';
import {
  CorruptArchiveError, RefusedEntryError, SafeTree, errnoCode, memberPath, readTar,
  type ArchiveEntry, type DeviceNumbers, type EntryMeta, type EntrySink,
} from '../unpack/index.js';
import { LOWER_FORM_MARKER, LOWER_TAR, LOWER_TREE } from './lower-form.js';
import { nulFields, runPython } from './python.js';
import { isRealRoot } from './privilege.js';
import { SandboxError } from './types.js';

const WHITEOUT_PREFIX = Buffer.from('.wh.');
const OPAQUE_MARKER = Buffer.from('.wh..wh..opq');
/** aufs' own bookkeeping names (`.wh..wh.plnk`, `.wh..wh.aufs`): skipped, as containerd does. */
const AUFS_META_PREFIX = Buffer.from('.wh..wh.');

/** What the Python pass must do after the tree is written: nodes Node cannot make, xattrs it cannot set. */
type NodeOp =
  | { op: 'mknod'; path: Buffer; device: DeviceNumbers; meta: EntryMeta }
  | { op: 'opaque'; path: Buffer };

const FIXUP_PY = String.raw`
import os, stat, sys
f = sys.stdin.buffer.read().split(b'\0')
kinds = {b'char': stat.S_IFCHR, b'block': stat.S_IFBLK, b'fifo': stat.S_IFIFO}
i = 0
while i < len(f) - 1:
    if f[i] == b'mknod':
        p, t, mode, ma, mi, uid, gid, mt = f[i + 1:i + 9]
        i += 9
        os.mknod(p, kinds[t] | 0o600, os.makedev(int(ma), int(mi)))
        os.chown(p, int(uid), int(gid), follow_symlinks=False)
        os.chmod(p, int(mode))
        os.utime(p, (int(mt), int(mt)), follow_symlinks=False)
    elif f[i] == b'opaque':
        os.setxattr(f[i + 1], b'trusted.overlay.opaque', b'y', follow_symlinks=False)
        i += 2
    else:
        sys.exit('bad op %r' % f[i])
`;

const keyOf = (parts: Buffer[]): string => parts.map((p) => `${p.toString('latin1')}/`).join('');

/**
 * Writes a layer's members as a root file system for overlayfs. lib/unpack's SafeTree places
 * every file, directory and link (no write ever follows a symlink, no name leaves the dir), but
 * symlink targets are kept as they are (a rootfs has absolute links; they resolve inside the
 * container); on top of it numeric owners, modes and mtimes are kept, devices and FIFOs made,
 * and OCI whiteouts turned into overlay ones.
 */
class LowerTree implements EntrySink {
  private readonly safe: SafeTree;
  private readonly ops = new Map<string, NodeOp>();
  /** Directories' modes and mtimes, set last: writing inside a directory changes its mtime. */
  private readonly dirs = new Map<string, { path: Buffer; meta: EntryMeta }>();

  constructor(root: string) {
    this.safe = new SafeTree(root) /* symlink targets are kept as text, as a root file system needs */;
  }

  async add(entry: ArchiveEntry): Promise<void> {
    const parts = memberPath(entry.name);
    if (typeof parts === 'string') throw new RefusedEntryError(entry.name, parts);
    const meta = entry.meta;
    if (!meta) throw new CorruptArchiveError(`tar member '${entry.name.toString('latin1')}' has unreadable owner, time or device fields`);
    const base = parts[parts.length - 1];
    const key = keyOf(parts);
    this.ops.delete(key); // a later member of the same name replaces an earlier one, as in tar

    if (base && entry.kind !== 'directory' && base.subarray(0, WHITEOUT_PREFIX.length).equals(WHITEOUT_PREFIX)) {
      const dirParts = parts.slice(0, -1);
      if (base.equals(OPAQUE_MARKER)) {
        // The directory itself may come later in the tar (or not at all): it exists like any parent.
        if (dirParts.length > 0) await this.safe.add({ kind: 'directory', name: entry.name.subarray(0, entry.name.lastIndexOf(0x2f)) });
        this.ops.set(`${key}opq`, { op: 'opaque', path: this.pathOf(dirParts) });
        return;
      }
      if (base.subarray(0, AUFS_META_PREFIX.length).equals(AUFS_META_PREFIX)) return;
      const hiddenName = base.subarray(WHITEOUT_PREFIX.length);
      const text = hiddenName.toString('latin1');
      if (text === '' || text === '.' || text === '..') throw new RefusedEntryError(entry.name, 'it is a whiteout of no name, of . or of ..');
      const hidden = [...dirParts, hiddenName];
      this.ops.set(keyOf(hidden), { op: 'mknod', path: this.safe.clearFor(entry.name, hidden), device: { type: 'char', major: 0, minor: 0 }, meta });
      return;
    }
    if (entry.kind === 'special') {
      if (!entry.device) throw new RefusedEntryError(entry.name, `${entry.what} are not allowed`);
      this.ops.set(key, { op: 'mknod', path: this.safe.clearFor(entry.name, parts), device: entry.device, meta });
      return;
    }
    await this.safe.add(entry);
    const path = this.pathOf(parts);
    switch (entry.kind) {
      case 'directory':
        this.dirs.delete(key);
        this.dirs.set(key, { path, meta });
        lchownSync(path, meta.uid, meta.gid);
        return;
      case 'hardlink':
        return; // the same inode as its target, whose member carried the metadata
      case 'symlink':
        lchownSync(path, meta.uid, meta.gid);
        lutimesSync(path, meta.mtime, meta.mtime);
        return;
      case 'file':
        lchownSync(path, meta.uid, meta.gid);
        chmodSync(path, meta.mode); // after chown, which clears setuid bits
        lutimesSync(path, meta.mtime, meta.mtime);
    }
  }

  private pathOf(parts: Buffer[]): Buffer {
    return Buffer.concat([this.safe.root, ...parts.flatMap((p) => [Buffer.from('/'), p])]);
  }

  async finish(): Promise<void> {
    const fields: (Buffer | string | number)[] = [];
    for (const op of this.ops.values()) {
      if (op.op === 'opaque') fields.push('opaque', op.path);
      else {
        const { device: d, meta: m } = op;
        fields.push('mknod', op.path, d.type, m.mode, d.major, d.minor, m.uid, m.gid, m.mtime);
      }
    }
    if (fields.length > 0) await runPython(FIXUP_PY, [], nulFields(fields), 'preparing a lower dir (device nodes, opaque dirs)');
    for (const { path, meta } of [...this.dirs.values()].reverse()) {
      chmodSync(path, meta.mode);
      lutimesSync(path, meta.mtime, meta.mtime);
    }
  }
}

/**
 * Unpacks one layer tar (plain, gzip or zstd; a path or a stream) into `dir`, which must not
 * exist or be empty, in the form the runners need (see {@link LOWER_FORM_MARKER}): as root the
 * tree itself in overlay form, otherwise the uncompressed tar. The work happens in a temporary
 * directory beside `dir`, renamed into place at the end: on any error nothing is left.
 */
export async function prepareLowerDir(layerTar: NodeJS.ReadableStream | string, dir: string): Promise<void> {
  const out = resolve(dir);
  await mkdir(dirname(out), { recursive: true });
  const work = await mkdtemp(join(dirname(out), `.${basename(out)}.prepare-`));
  try {
    const source = decompressLayer(typeof layerTar === 'string' ? createReadStream(layerTar, { highWaterMark: 1 << 20 }) : toChunks(layerTar));
    if (await isRealRoot()) {
      const tree = join(work, LOWER_TREE);
      await mkdir(tree, 0o755);
      const sink = new LowerTree(tree);
      await readTar(source, sink);
      await sink.finish();
      await writeFile(join(work, LOWER_FORM_MARKER), 'overlay\n');
    } else {
      await pipeline(source, createWriteStream(join(work, LOWER_TAR)));
      await writeFile(join(work, LOWER_FORM_MARKER), 'tar\n');
    }
    await chmod(work, 0o755);
    await claim(out);
    await rename(work, out);
  } catch (e) {
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
}

async function* toChunks(stream: NodeJS.ReadableStream): AsyncGenerator<Uint8Array> {
  for await (const chunk of stream) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
}

/** An empty `dir` is removed so the rename can take its place; anything else is an error. */
async function claim(out: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(out);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    throw e;
  }
  if (entries.length > 0) throw new SandboxError(`cannot prepare the lower dir '${out}': it exists and is not empty`);
  await rmdir(out);
}
