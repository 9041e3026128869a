import { open, rm } from 'node:fs/promises';
import { TarWriter } from '../image/index.js';
import type { DuplicatePair } from './dedupe.js';
import { FileSink } from './file-sink.js';
import type { DirNode, FileNode, TreeNode } from './layer-tree.js';

/**
 * The layer tar, deterministic: entries in GNU `tar --sort=name` order (each directory's
 * entries by bytes, a directory before its contents), every mtime SOURCE_DATE_EPOCH, owners as
 * the tree says, empty uname/gname, modes kept. The layer root itself gets no entry (nixpkgs
 * writes `./` with the last copyToRoot's mode and the uid/gid, which would re-own the base's /).
 * The header format is the project's own writer's (Go archive/tar's): USTAR, with a PAX record
 * only for a name, link target, size or owner that does not fit (or is not ASCII); names without a `./` prefix,
 * directories ending in '/'. Files are read as they are written, so memory does not grow with
 * the layer; the diff_id is hashed on the way to the file.
 */

export interface LayerEntry {
  name: string;
  node: Exclude<TreeNode, DirNode> | DirNode;
  /** Written as a hard link to this earlier entry. */
  linkTo?: string;
}

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** The tree's entries in the order GNU tar --sort=name writes them. */
export function layerEntries(tree: DirNode, pairs: readonly DuplicatePair[]): LayerEntry[] {
  const out: LayerEntry[] = [];
  const walk = (dir: DirNode, prefix: string) => {
    for (const name of [...dir.children.keys()].sort(byBytes)) {
      const node = dir.children.get(name)!;
      const path = prefix + name;
      if (node.kind === 'dir') {
        if (node.emit) out.push({ name: `${path}/`, node });
        walk(node, `${path}/`);
      } else {
        out.push({ name: path, node });
      }
    }
  };
  walk(tree, '');
  // Of each duplicate pair the first in the stream holds the bytes; a link must follow its target.
  const index = new Map<FileNode, number>();
  out.forEach((e, i) => {
    if (e.node.kind === 'file') index.set(e.node, i);
  });
  for (const { root, store } of pairs) {
    const a = index.get(root);
    const b = index.get(store);
    if (a === undefined || b === undefined) continue;
    const [first, second] = a < b ? [a, b] : [b, a];
    out[second]!.linkTo = out[first]!.name;
  }
  return out;
}

/**
 * A file's bytes read into the sink's slab piece by piece; one byte more than expected (or
 * fewer) makes the tar writer report that the file changed while being read.
 */
async function* fileChunks(path: string, size: number, sink: FileSink): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  try {
    let off = 0;
    for (;;) {
      const last = size - off <= FileSink.MAX_REGION - 1;
      const want = last ? size - off + 1 : FileSink.MAX_REGION;
      const buf = await sink.region(want);
      const { bytesRead } = await fh.read(buf, 0, want, off);
      if (bytesRead === 0) return;
      off += bytesRead;
      yield buf.subarray(0, bytesRead);
      if ((last && bytesRead < want) || off > size) return;
    }
  } finally {
    await fh.close();
  }
}

export interface WrittenLayer {
  diffId: string;
  size: number;
}

/** Writes the entries as a tar to `dest` (removed on failure); returns its diff_id and size. */
export async function writeLayerTar(
  entries: readonly LayerEntry[], dest: string, mtime: number,
  opts: { signal?: AbortSignal; progress?: (bytes: number) => void } = {},
): Promise<WrittenLayer> {
  const fh = await open(dest, 'w', 0o644);
  const sink = new FileSink(fh, { hash: true });
  let failure: unknown;
  sink.on('error', (e: unknown) => { failure ??= e; });
  const tar = new TarWriter(sink);
  let reported = 0;
  try {
    for (const e of entries) {
      opts.signal?.throwIfAborted();
      if (failure) throw failure;
      const n = e.node;
      const common = { name: e.name, mode: n.mode, uid: n.uid, gid: n.gid, mtime };
      if (e.linkTo !== undefined) {
        await tar.addHardlink(common, e.linkTo);
      } else if (n.kind === 'dir') {
        await tar.addDirectory(common);
      } else if (n.kind === 'file') {
        const content = fileChunks(n.real, n.size, sink);
        await tar.addFile({ ...common, size: n.size }, content).catch((err: Error) => {
          throw /declared size/.test(err.message) ? new Error(`${n.label}: ${n.real} changed while the layer was written (${err.message})`) : err;
        });
      } else if (n.kind === 'symlink') {
        await tar.addSymlink(common, n.target);
      } else if (n.kind === 'fifo') {
        await tar.addSpecial({ ...common, type: 'fifo' });
      } else {
        await tar.addSpecial({ ...common, type: n.kind, devmajor: n.major, devminor: n.minor });
      }
      if (opts.progress && tar.position - reported >= 1 << 20) {
        reported = tar.position;
        opts.progress(reported);
      }
    }
    await tar.finish();
    await sink.close();
    if (failure) throw failure;
    await fh.close();
  } catch (e) {
    sink.destroy();
    await fh.close().catch(() => undefined);
    await rm(dest, { force: true });
    throw e;
  }
  opts.progress?.(tar.position);
  return { diffId: `sha256:${sink.hash!.digest('hex')}`, size: tar.position };
}
