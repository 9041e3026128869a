import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { GoRawJson, goMarshal, topLevelRawJson, type GoJsonValue } from './canonical-json.js';
import type { ArchiveLayer } from './layer.js';
import { TarWriter } from './tar.js';

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

async function writeTo(tar: TarWriter, input: DockerArchiveInput): Promise<void> {
  const configDigest = `sha256:${sha256(input.config)}`;
  const diffIds = input.layers.map((l) => l.diffId);
  const written = new Set<string>();
  for (const layer of input.layers) {
    if (written.has(layer.diffId)) continue;
    written.add(layer.diffId);
    const source = await layer.open();
    await tar.addFile({ name: `${hexOf(layer.diffId)}.tar`, mode: FILE_MODE, size: layer.size }, layer.verified ? source : verified(layer, source));
  }
  await tar.addFile({ name: `${hexOf(configDigest)}.json`, mode: FILE_MODE, size: input.config.length }, input.config);
  const legacy = legacyLayers(input.config, diffIds);
  for (const l of legacy) {
    await tar.addSymlink({ name: `${l.id}/layer.tar`, mode: 0 }, `../${hexOf(l.diffId)}.tar`);
    await tar.addFile({ name: `${l.id}/VERSION`, mode: FILE_MODE, size: 3 }, '1.0');
    await tar.addFile({ name: `${l.id}/json`, mode: FILE_MODE, size: l.json.length }, l.json);
  }
  const manifest = archiveManifest(configDigest, diffIds, input.repoTags);
  await tar.addFile({ name: 'manifest.json', mode: FILE_MODE, size: manifest.length }, manifest);
  const repositories = archiveRepositories(legacy.at(-1)?.id, input.repoTags);
  await tar.addFile({ name: 'repositories', mode: FILE_MODE, size: repositories.length }, repositories);
  await tar.finish();
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
    await writeTo(new TarWriter(dest), input);
    return;
  }
  const out = createWriteStream(dest, { mode: 0o644 });
  // An error while idle (no pending drain) must not go unhandled; it resurfaces on the next write.
  let failure: unknown;
  out.on('error', (e) => { failure ??= e; });
  try {
    await once(out, 'open');
    await writeTo(new TarWriter(out), input);
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
