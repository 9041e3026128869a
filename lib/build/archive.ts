import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { TarWriter, archiveRepositories, goMarshal, legacyLayers } from '../image/index.js';
import type { BaseArchive } from './base-image.js';
import { compressStream, type Compressor } from './compress.js';
import { FileSink } from './file-sink.js';

/**
 * The docker-archive nixpkgs' buildImage writes, as a deterministic tar:
 * - everything of the base archive except its top-level `*.json` (config, manifest.json) and
 *   `repositories`: base layers keep their names and bytes, copied out of the base archive
 *   (hard links there are written as files, as `--hard-dereference` does);
 * - `<layerID>/layer.tar`, `<layerID>/json`, `<layerID>/VERSION` (`1.0`, no newline) for the
 *   new layer, `<config sha256>.json`, `manifest.json` (the base's layer names + the new one)
 *   and `repositories` ({name: {tag: layerID}});
 * - names in GNU `--sort=name` order, mtime SOURCE_DATE_EPOCH, owner 0:0, modes without write
 *   bits (nixpkgs' `chmod -R a-w`), then compressed as asked.
 * The layer id and its json are containers/image's (legacyLayers: the chain id of the
 * diff_ids): nixpkgs hashes a json holding a tarsum of the layer, a checksum nothing reads.
 */

type Source =
  | { kind: 'bytes'; bytes: Buffer }
  | { kind: 'range'; path: string; offset: number; size: number };

interface Member {
  name: string;
  type: 'file' | 'symlink' | 'directory';
  mode: number;
  linkname?: string;
  source?: Source;
  size?: number;
}

export interface NewLayerFile {
  path: string;
  size: number;
  diffId: string;
}

const bytes = (name: string, data: Buffer): Member => ({ name, type: 'file', mode: 0o444, size: data.length, source: { kind: 'bytes', bytes: data } });

/** GNU tar --sort=name order of full paths: component by component, each by bytes. */
export function compareTarPaths(a: string, b: string): number {
  const pa = a.replace(/\/$/, '').split('/');
  const pb = b.replace(/\/$/, '').split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = Buffer.compare(Buffer.from(pa[i]!), Buffer.from(pb[i]!));
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}

function baseMembers(base: BaseArchive): Member[] {
  const byName = new Map(base.members.map((m) => [m.name, m]));
  const out: Member[] = [];
  for (const m of base.members) {
    if (m.name === '' || m.name === '.') continue;
    if (!m.name.includes('/') && (m.name.endsWith('.json') || m.name === 'repositories')) continue;
    const mode = m.mode & 0o7555;
    if (m.type === '5') {
      out.push({ name: m.name, type: 'directory', mode });
    } else if (m.type === '2') {
      out.push({ name: m.name, type: 'symlink', mode: 0o777, linkname: m.linkname });
    } else if (m.type === '1') {
      const target = byName.get(m.linkname.replace(/^(\.\/|\/)+/, ''));
      if (!target || target.type !== '0') throw new Error(`base image ${base.path}: hard link ${m.name} points at ${m.linkname}, which is no file in the archive`);
      out.push({ name: m.name, type: 'file', mode: target.mode & 0o7555, size: target.size, source: { kind: 'range', path: base.path, offset: target.dataOffset, size: target.size } });
    } else if (m.type === '0' || m.type === '7') {
      out.push({ name: m.name, type: 'file', mode, size: m.size, source: { kind: 'range', path: base.path, offset: m.dataOffset, size: m.size } });
    } else {
      throw new Error(`base image ${base.path}: member ${m.name} has tar type '${m.type}', which a docker-archive does not hold`);
    }
  }
  return out;
}

/** A byte range of a file read into the sink's own slab (no per-chunk buffers to collect). */
async function* rangeChunks(src: { path: string; offset: number; size: number }, sink: FileSink): AsyncGenerator<Buffer> {
  const fh = await open(src.path, 'r');
  try {
    for (let done = 0; done < src.size;) {
      const buf = await sink.region(Math.min(FileSink.MAX_REGION, src.size - done));
      const { bytesRead } = await fh.read(buf, 0, buf.length, src.offset + done);
      if (bytesRead === 0) throw new Error(`${src.path} is shorter than expected (it changed while the image was written)`);
      done += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

export interface ArchiveInput {
  base: BaseArchive | null;
  layer: NewLayerFile;
  config: Buffer;
  configDigest: string;
  repoTag: { name: string; tag: string };
  mtime: number;
  compressor: Compressor;
}

export async function writeBuildArchive(dest: string, input: ArchiveInput, opts: { signal?: AbortSignal; progress?: (bytes: number) => void } = {}): Promise<void> {
  const diffIds = [...(input.base?.layers.map((l) => l.diffId) ?? []), input.layer.diffId];
  const top = legacyLayers(input.config, diffIds).at(-1)!;
  const configFile = `${input.configDigest.slice('sha256:'.length)}.json`;
  const layerNames = [...(input.base?.layers.map((l) => l.name) ?? []), `${top.id}/layer.tar`];
  const manifest = goMarshal([{ Config: configFile, RepoTags: [`${input.repoTag.name}:${input.repoTag.tag}`], Layers: layerNames }]);
  const members: Member[] = [
    ...(input.base ? baseMembers(input.base) : []),
    { name: `${top.id}/layer.tar`, type: 'file', mode: 0o444, size: input.layer.size, source: { kind: 'range', path: input.layer.path, offset: 0, size: input.layer.size } },
    bytes(`${top.id}/json`, top.json),
    bytes(`${top.id}/VERSION`, Buffer.from('1.0')),
    bytes(configFile, input.config),
    bytes('manifest.json', manifest),
    bytes('repositories', archiveRepositories(top.id, [input.repoTag])),
  ];
  members.sort((a, b) => compareTarPaths(a.name, b.name));
  for (let i = 1; i < members.length; i++) {
    if (compareTarPaths(members[i - 1]!.name, members[i]!.name) === 0) throw new Error(`the image archive would hold ${members[i]!.name} twice (the base archive already has it)`);
  }

  const fh = await open(dest, 'wx', 0o644);
  const file = new FileSink(fh);
  const compress = await compressStream(input.compressor);
  const done = compress ? pipeline(compress, file) : Promise.resolve();
  done.catch(() => undefined); // awaited below; a failure also surfaces on the next write
  const tar = new TarWriter(compress ?? file);
  try {
    for (const m of members) {
      opts.signal?.throwIfAborted();
      const header = { name: m.type === 'directory' ? `${m.name}/` : m.name, mode: m.mode, uid: 0, gid: 0, mtime: input.mtime };
      if (m.type === 'directory') await tar.addDirectory(header);
      else if (m.type === 'symlink') await tar.addSymlink(header, m.linkname!);
      else {
        const src = m.source!;
        const content = src.kind === 'bytes'
          ? src.bytes
          : src.size === 0 ? Buffer.alloc(0)
            : compress ? createReadStream(src.path, { start: src.offset, end: src.offset + src.size - 1, highWaterMark: 1 << 20 })
              : rangeChunks(src, file);
        await tar.addFile({ ...header, size: m.size! }, content);
      }
      opts.progress?.(tar.position);
    }
    await tar.finish();
    if (compress) {
      compress.end();
      await done;
    } else {
      await file.close();
    }
    await fh.close();
  } catch (e) {
    compress?.destroy();
    file.destroy();
    await fh.close().catch(() => undefined);
    await rm(dest, { force: true });
    throw e;
  }
}
