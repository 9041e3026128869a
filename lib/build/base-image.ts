import { createReadStream } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { sniffCompression, tarMembers, uncompressLayerToFile, type TarMember } from '../image/index.js';
import type { BaseStoreView } from './closure-placement.js';
import type { Json } from './image-types.js';

/**
 * A base image given as a docker-archive: its manifest, config and layers located inside the
 * archive file (their bytes are copied from there, never unpacked and re-tarred), and which
 * store paths its layers hold. A gzip- or zstd-compressed archive (what `compressor` makes)
 * is decompressed to a temporary file first.
 */

export interface BaseLayer {
  /** The name the base manifest gives (e.g. `<hex>.tar` or `<id>/layer.tar`). */
  name: string;
  /** The archive member holding the bytes (symlinks and hard links in the archive followed). */
  member: TarMember;
  diffId: string;
}

export interface BaseArchive {
  /** The uncompressed archive. */
  path: string;
  /** Every member, names without a leading `./`. */
  members: TarMember[];
  configName: string;
  config: Buffer;
  configJson: { [key: string]: Json };
  repoTags: string[];
  layers: BaseLayer[];
  close(): Promise<void>;
}

const normalise = (name: string): string => name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');

async function readMember(fh: FileHandle, m: TarMember): Promise<Buffer> {
  const buf = Buffer.alloc(m.size);
  const { bytesRead } = await fh.read(buf, 0, m.size, m.dataOffset);
  if (bytesRead !== m.size) throw new Error(`member ${m.name} is truncated`);
  return buf;
}

function isObject(v: unknown): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export async function openBaseArchive(archive: string, tmpDir = tmpdir()): Promise<BaseArchive> {
  const where = `base image ${archive}`;
  let path = archive;
  let temp: string | undefined;
  const head = Buffer.alloc(6);
  {
    const fh = await open(archive, 'r').catch((e: NodeJS.ErrnoException) => {
      throw new Error(`${where}: cannot open it (${e.code ?? e.message})`);
    });
    try {
      await fh.read(head, 0, 6, 0);
    } finally {
      await fh.close();
    }
  }
  const compression = sniffCompression(head);
  if (compression !== 'none') {
    if (compression !== 'gzip' && compression !== 'zstd') throw new Error(`${where}: ${compression}-compressed archives are not supported (use none, gz or zstd)`);
    temp = join(tmpDir, `.base-${randomBytes(6).toString('hex')}.tar`);
    await uncompressLayerToFile(createReadStream(archive, { highWaterMark: 1 << 20 }), temp).catch((e: Error) => {
      throw new Error(`${where}: cannot decompress it (${e.message})`);
    });
    path = temp;
  }
  const fh = await open(path, 'r');
  const close = async () => {
    await fh.close().catch(() => undefined);
    if (temp) await rm(temp, { force: true });
  };
  try {
    const { size } = await fh.stat();
    const members: TarMember[] = [];
    for await (const m of tarMembers(fh, 0, size, where)) members.push({ ...m, name: normalise(m.name) });
    const byName = new Map(members.map((m) => [m.name, m]));
    const resolveMember = (name: string): TarMember => {
      let m = byName.get(normalise(name));
      for (let hop = 0; m && (m.type === '2' || m.type === '1') && hop < 40; hop++) {
        const target = m.type === '2' ? posix.join(posix.dirname(m.name), m.linkname) : m.linkname;
        m = byName.get(normalise(target));
      }
      if (!m || m.type === '2' || m.type === '1') throw new Error(`${where}: the archive has no member ${name} (named in manifest.json)`);
      return m;
    };
    const manifestMember = byName.get('manifest.json');
    if (!manifestMember) throw new Error(`${where}: no manifest.json (not a docker-archive: use a docker-archive, e.g. one fetch-image pulled or built)`);
    const manifest: unknown = JSON.parse((await readMember(fh, manifestMember)).toString('utf8'));
    const item: unknown = Array.isArray(manifest) ? manifest[0] : undefined;
    if (!isObject(item) || typeof item.Config !== 'string' || !Array.isArray(item.Layers) || !item.Layers.every((l) => typeof l === 'string')) {
      throw new Error(`${where}: manifest.json is not [{"Config": …, "Layers": […]}]`);
    }
    const configName = normalise(item.Config);
    const config = await readMember(fh, resolveMember(configName));
    const configJson: unknown = JSON.parse(config.toString('utf8'));
    if (!isObject(configJson)) throw new Error(`${where}: its config ${configName} is not a JSON object`);
    const rootfs = configJson.rootfs;
    const diffIds = isObject(rootfs) && Array.isArray(rootfs.diff_ids) ? rootfs.diff_ids : [];
    const layerNames = item.Layers as string[];
    if (diffIds.length !== layerNames.length || !diffIds.every((d) => typeof d === 'string' && /^sha256:[0-9a-f]{64}$/.test(d))) {
      throw new Error(`${where}: config rootfs.diff_ids (${diffIds.length}) does not match the ${layerNames.length} layers of manifest.json`);
    }
    const layers = layerNames.map((name, i) => ({ name: normalise(name), member: resolveMember(name), diffId: diffIds[i] as string }));
    const repoTags = Array.isArray(item.RepoTags) ? item.RepoTags.filter((t): t is string => typeof t === 'string') : [];
    return { path, members, configName, config, configJson, repoTags, layers, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * The store paths the base's file system holds, from its layers' member names (read once, no
 * file data): a layer with `nix/store/<hash>-<name>…` entries adds that path; a later layer's
 * whiteout of it (or of the store directory, or an opaque store directory) removes it again.
 */
export async function scanBaseStore(base: BaseArchive, storeDir: string): Promise<BaseStoreView> {
  const storeRel = storeDir.replace(/^\/+/, '').replace(/\/+$/, '');
  const prefixes = storeRel.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  const present = new Set<string>();
  const dirs = new Set<string>();
  const fh = await open(base.path, 'r');
  try {
    for (const [i, layer] of base.layers.entries()) {
      const inLayer = new Set<string>();
      const removed = new Set<string>();
      let clear = false;
      const where = `base image layer ${i + 1} (${layer.name})`;
      for await (const m of tarMembers(fh, layer.member.dataOffset, layer.member.size, where)) {
        const name = normalise(m.name);
        const slash = name.lastIndexOf('/');
        const parent = slash < 0 ? '' : name.slice(0, slash);
        const leaf = name.slice(slash + 1);
        if (leaf.startsWith('.wh.')) {
          const hidden = leaf === '.wh..wh..opq' ? null : leaf.slice(4);
          if (parent === storeRel) {
            if (hidden === null) clear = true;
            else removed.add(`${storeDir}/${hidden}`);
          } else if (parent === '' || prefixes.includes(parent)) {
            // Above the store: an opaque directory, or a whiteout of the store dir or a parent of it.
            if (hidden === null || prefixes.includes(parent ? `${parent}/${hidden}` : hidden)) clear = true;
          }
          continue;
        }
        if (prefixes.includes(name)) dirs.add(name);
        if (name.startsWith(`${storeRel}/`)) {
          for (const p of prefixes) dirs.add(p);
          const rest = name.slice(storeRel.length + 1);
          const cut = rest.indexOf('/');
          inLayer.add(`${storeDir}/${cut < 0 ? rest : rest.slice(0, cut)}`);
        }
      }
      if (clear) present.clear();
      for (const r of removed) present.delete(r);
      for (const p of inLayer) present.add(p);
    }
  } finally {
    await fh.close();
  }
  return { storePaths: present, dirs };
}

/** What a base image offers a build: its store paths, config, diff_ids and tags. */
export async function baseImageInfo(archive: string, storeDir = '/nix/store'): Promise<{
  storePaths: Set<string>; config: Json; diffIds: string[]; repoTags: string[];
}> {
  const base = await openBaseArchive(archive);
  try {
    const view = await scanBaseStore(base, storeDir);
    return { storePaths: new Set(view.storePaths), config: base.configJson, diffIds: base.layers.map((l) => l.diffId), repoTags: base.repoTags };
  } finally {
    await base.close();
  }
}

