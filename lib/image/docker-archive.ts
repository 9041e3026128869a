import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { GoRawJson, goMarshal, topLevelRawJson, type GoJsonValue } from './canonical-json.js';
import type { ArchiveLayer } from './layer.js';
import { BLOCK, encodeTarHeader, tarPadding, writeWithBackpressure } from './tar.js';

/**
 * The docker-archive `skopeo copy docker://REF@DIGEST docker-archive:OUT:NAME:TAG` writes
 * (skopeo 1.9, containers/image v5 docker/internal/tarfile.Writer), byte for byte:
 *   1. each distinct layer, uncompressed, as `<diffid hex>.tar` (a repeated diff_id is written once)
 *   2. the config, unchanged, as `<config digest hex>.json`
 *   3. per layer: `<id>/layer.tar` (symlink to `../<diffid hex>.tar`), `<id>/VERSION` ("1.0"), `<id>/json`
 *   4. `manifest.json`, then `repositories`
 * Files are mode 0444, symlinks mode 0, uid/gid 0, mtime 0, empty uname/gname; see tar.ts.
 *
 * Tar headers need each size up front but a registry manifest only gives compressed sizes, so
 * layers come in already uncompressed with known size and diff_id (skopeo does the same: it
 * spools an uncompressed layer to a temp file first). Use uncompressLayerToFile + layerFromFile;
 * the writer streams each layer once, checking its size and sha256 against what was declared.
 */

export interface RepoTag {
  /** The fully normalised repository name, e.g. `docker.io/library/ubuntu`. */
  name: string;
  tag: string;
}

export interface DockerArchiveInput {
  /** The image config exactly as fetched (its sha256 names the file). */
  config: Buffer;
  /** Layers in manifest order. */
  layers: readonly ArchiveLayer[];
  repoTags: readonly RepoTag[];
}

const FILE_MODE = 0o444;
const LEGACY_ATTRS = ['architecture', 'config', 'container', 'container_config', 'created', 'docker_version', 'os'] as const;

function hexOf(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new Error(`not a sha256 digest: ${digest}`);
  return m[1]!;
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface LegacyLayer {
  /** The legacy image id (the `<id>/` directory). */
  id: string;
  diffId: string;
  /** The `<id>/json` file. */
  json: Buffer;
}

/**
 * containers/image's legacy layer ids and json: a chain id (like docker's layer.CreateChainID)
 * is put into the layer config as `layer_id`, the id is the sha256 of that JSON, and the stored
 * json is the same config with `id` instead. The top layer also carries 7 fields of the image
 * config (null when absent), re-emitted through Go's compact().
 */
export function legacyLayers(config: Buffer, diffIds: readonly string[]): LegacyLayer[] {
  const out: LegacyLayer[] = [];
  let chainId = '';
  let parent = '';
  diffIds.forEach((diffId, i) => {
    hexOf(diffId);
    const fields = new Map<string, GoJsonValue>();
    if (parent) fields.set('parent', parent);
    if (i === diffIds.length - 1) {
      const top = topLevelRawJson(config);
      for (const attr of LEGACY_ATTRS) {
        const raw = top.get(attr);
        fields.set(attr, raw === undefined ? null : new GoRawJson(raw));
      }
    }
    chainId = chainId === '' ? diffId : `sha256:${sha256(`${chainId} ${diffId}`)}`;
    fields.set('layer_id', chainId);
    const id = sha256(goMarshal(fields));
    fields.delete('layer_id');
    fields.set('id', id);
    out.push({ id, diffId, json: goMarshal(fields) });
    parent = id;
  });
  return out;
}

/** `manifest.json`: one item; RepoTags as `name:tag` without repeats. */
export function archiveManifest(configDigest: string, diffIds: readonly string[], repoTags: readonly RepoTag[]): Buffer {
  const tags: string[] = [];
  for (const t of repoTags) {
    const s = `${t.name}:${t.tag}`;
    if (!tags.includes(s)) tags.push(s);
  }
  return goMarshal([{ Config: `${hexOf(configDigest)}.json`, RepoTags: tags, Layers: diffIds.map((d) => `${hexOf(d)}.tar`) }]);
}

/** `repositories`: {name: {tag: top legacy id}}, empty when there are no layers. */
export function archiveRepositories(topLayerId: string | undefined, repoTags: readonly RepoTag[]): Buffer {
  const repos = new Map<string, Map<string, GoJsonValue>>();
  if (topLayerId !== undefined) {
    for (const t of repoTags) {
      if (!repos.has(t.name)) repos.set(t.name, new Map());
      repos.get(t.name)!.set(t.tag, topLayerId);
    }
  }
  return goMarshal(repos);
}

/** A stretch of the archive: fixed bytes (headers, small files, padding) or one layer's content. */
export type ArchivePiece =
  | { kind: 'bytes'; offset: number; bytes: Buffer }
  | { kind: 'layer'; offset: number; diffId: string; size: number };

export interface ArchiveLayout {
  /** Total bytes of the archive. */
  size: number;
  pieces: ArchivePiece[];
}

/**
 * Where every byte of the archive goes, given only the layers' diff_ids and sizes: the one
 * description of the format, used both to stream the archive and to write its layers in
 * parallel at known offsets. Adjacent fixed bytes are merged into one piece.
 */
export function dockerArchiveLayout(config: Buffer, layers: readonly { diffId: string; size: number }[], repoTags: readonly RepoTag[]): ArchiveLayout {
  const pieces: ArchivePiece[] = [];
  let offset = 0;
  let fixed: Buffer[] = [];
  let fixedStart = 0;
  const flush = () => {
    if (fixed.length) pieces.push({ kind: 'bytes', offset: fixedStart, bytes: Buffer.concat(fixed) });
    fixed = [];
  };
  const bytes = (b: Buffer) => {
    if (!fixed.length) fixedStart = offset;
    fixed.push(b);
    offset += b.length;
  };
  const file = (name: string, content: Buffer) => {
    bytes(encodeTarHeader({ type: 'file', name, mode: FILE_MODE, size: content.length }));
    bytes(content);
    bytes(Buffer.alloc(tarPadding(content.length)));
  };
  const configDigest = `sha256:${sha256(config)}`;
  const diffIds = layers.map((l) => l.diffId);
  const written = new Set<string>();
  for (const layer of layers) {
    if (written.has(layer.diffId)) continue;
    written.add(layer.diffId);
    bytes(encodeTarHeader({ type: 'file', name: `${hexOf(layer.diffId)}.tar`, mode: FILE_MODE, size: layer.size }));
    flush();
    pieces.push({ kind: 'layer', offset, diffId: layer.diffId, size: layer.size });
    offset += layer.size;
    bytes(Buffer.alloc(tarPadding(layer.size)));
  }
  file(`${hexOf(configDigest)}.json`, config);
  const legacy = legacyLayers(config, diffIds);
  for (const l of legacy) {
    bytes(encodeTarHeader({ type: 'symlink', name: `${l.id}/layer.tar`, mode: 0, linkname: `../${hexOf(l.diffId)}.tar` }));
    file(`${l.id}/VERSION`, Buffer.from('1.0'));
    file(`${l.id}/json`, l.json);
  }
  file('manifest.json', archiveManifest(configDigest, diffIds, repoTags));
  file('repositories', archiveRepositories(legacy.at(-1)?.id, repoTags));
  bytes(Buffer.alloc(2 * BLOCK));
  flush();
  return { size: offset, pieces };
}

async function writeTo(out: Writable, input: DockerArchiveInput): Promise<void> {
  const byDiffId = new Map(input.layers.map((l) => [l.diffId, l]));
  for (const piece of dockerArchiveLayout(input.config, input.layers, input.repoTags).pieces) {
    if (piece.kind === 'bytes') {
      await writeWithBackpressure(out, piece.bytes);
      continue;
    }
    const layer = byDiffId.get(piece.diffId)!;
    const source = await layer.open();
    const name = `${hexOf(layer.diffId)}.tar`;
    let n = 0;
    for await (const chunk of layer.verified ? source : verified(layer, source)) {
      n += chunk.length;
      if (n > layer.size) throw new Error(`tar entry ${name}: content exceeds declared size ${layer.size}`);
      await writeWithBackpressure(out, chunk);
    }
    if (n !== layer.size) throw new Error(`tar entry ${name}: declared size ${layer.size}, got ${n} bytes`);
  }
}

/** A layer whose bytes are not what its diff_id says (e.g. a damaged cache file). */
export class LayerDigestMismatchError extends Error {
  constructor(readonly diffId: string, readonly got: string) {
    super(`layer content has digest ${got}, expected diff_id ${diffId}`);
  }
}

// Passes the layer through while hashing it; a digest other than the declared diff_id is an error.
async function* verified(layer: ArchiveLayer, source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const hash = createHash('sha256');
  for await (const chunk of source) {
    hash.update(chunk);
    yield chunk;
  }
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== layer.diffId) throw new LayerDigestMismatchError(layer.diffId, got);
}

/**
 * Writes the archive to a file path (removed again on failure) or into a Writable (not ended,
 * so the caller can hash or close it as it likes).
 */
export async function writeDockerArchive(dest: string | Writable, input: DockerArchiveInput): Promise<void> {
  if (typeof dest !== 'string') {
    await writeTo(dest, input);
    return;
  }
  const out = createWriteStream(dest, { mode: 0o644 });
  // An error while idle (no pending drain) must not go unhandled; it resurfaces on the next write.
  let failure: unknown;
  out.on('error', (e) => { failure ??= e; });
  try {
    await once(out, 'open');
    await writeTo(out, input);
    out.end();
    await once(out, 'close');
    if (failure) throw failure;
  } catch (e) {
    out.destroy();
    await rm(dest, { force: true });
    // The writer's own error says what went wrong (a stream error it caused is only an echo).
    throw e;
  }
}
