import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashFile } from '../../lib/hash/index.js';
import { writeOciLayout, type OciBlob } from '../../lib/image/index.js';
import { compressFile, writeLayerTar, type Compression, type EntrySpec } from './layer.js';

/**
 * Small, deterministic test images written as OCI image layouts (blobs exactly as a registry
 * would serve them), in OCI or Docker media types, single-platform or as a multi-arch index.
 * A Docker-typed layout is a staging area for pushImage: skopeo and umoci only open OCI-typed ones.
 */

export type MediaTypes = 'oci' | 'docker';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface LayerSpec {
  entries: readonly EntrySpec[];
  /** Default gzip. zstd exists only in OCI media types. */
  compression?: Compression;
}

export interface ImageSpec {
  layers: readonly LayerSpec[];
  /** Default 'oci'. */
  mediaTypes?: MediaTypes;
  /** Default linux/amd64. */
  platform?: Platform;
  /** Merged into the config's `config` object (Cmd, Env, Labels, ...). */
  runConfig?: Record<string, unknown>;
  /** Extra top-level config fields (e.g. container_config, docker_version). */
  extraConfig?: Record<string, unknown>;
  /** Write the config and manifest indented, as Docker's tools do; default compact. */
  pretty?: boolean;
  /** Rewrites the serialised config text (e.g. to put in number or escape forms JSON.stringify never writes). */
  editConfig?: (json: string) => string;
}

export interface BuiltLayer {
  mediaType: string;
  digest: string;
  size: number;
  diffId: string;
  uncompressedSize: number;
}

export interface BuiltImage {
  digest: string;
  mediaType: string;
  manifest: Buffer;
  config: Buffer;
  configDigest: string;
  layers: BuiltLayer[];
  platform: Platform;
}

export interface BuiltLayout {
  /** The OCI layout directory. */
  dir: string;
  tag: string;
  /** Digest and media type of the top manifest (an image manifest or an index). */
  digest: string;
  mediaType: string;
  /** The platform images; one for a single image. */
  images: BuiltImage[];
}

export const MEDIA = {
  oci: {
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    index: 'application/vnd.oci.image.index.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layer: { gzip: 'application/vnd.oci.image.layer.v1.tar+gzip', zstd: 'application/vnd.oci.image.layer.v1.tar+zstd', none: 'application/vnd.oci.image.layer.v1.tar' },
  },
  docker: {
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layer: { gzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip', zstd: null, none: 'application/vnd.docker.image.rootfs.diff.tar' },
  },
} as const;

const CREATED = '2024-01-01T00:00:00Z';

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function toJson(value: unknown, pretty: boolean | undefined): Buffer {
  return Buffer.from(pretty ? JSON.stringify(value, null, 3) : JSON.stringify(value));
}

interface Staged {
  image: BuiltImage;
  blobs: OciBlob[];
}

async function stageImage(spec: ImageSpec, work: string, n: number): Promise<Staged> {
  const kind = spec.mediaTypes ?? 'oci';
  const media = MEDIA[kind];
  const platform = spec.platform ?? { os: 'linux', architecture: 'amd64' };
  const blobs: OciBlob[] = [];
  const layers: BuiltLayer[] = [];
  for (const [i, layer] of spec.layers.entries()) {
    const compression = layer.compression ?? 'gzip';
    const mediaType = media.layer[compression];
    if (mediaType === null) throw new Error(`${compression} layers need OCI media types`);
    const tarPath = join(work, `${n}-${i}.tar`);
    const blobPath = join(work, `${n}-${i}.blob`);
    await writeLayerTar(layer.entries, tarPath);
    await compressFile(tarPath, blobPath, compression);
    const digest = `sha256:${(await hashFile(blobPath)).base16}`;
    const { size } = await stat(blobPath);
    layers.push({
      mediaType, digest, size,
      diffId: `sha256:${(await hashFile(tarPath)).base16}`,
      uncompressedSize: (await stat(tarPath)).size,
    });
    blobs.push({ digest, size, data: () => createReadStream(blobPath) });
  }
  const configJson = toJson({
    created: CREATED,
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'], ...spec.runConfig },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created: CREATED, created_by: `fixture layer ${i}` })),
    ...spec.extraConfig,
  }, spec.pretty);
  const config = spec.editConfig ? Buffer.from(spec.editConfig(configJson.toString())) : configJson;
  const configDigest = sha256(config);
  blobs.push({ digest: configDigest, size: config.length, data: config });
  const manifest = toJson({
    schemaVersion: 2,
    mediaType: media.manifest,
    config: { mediaType: media.config, size: config.length, digest: configDigest },
    layers: layers.map((l) => ({ mediaType: l.mediaType, size: l.size, digest: l.digest })),
  }, spec.pretty);
  return {
    image: { digest: sha256(manifest), mediaType: media.manifest, manifest, config, configDigest, layers, platform },
    blobs,
  };
}

async function withWorkDir<T>(fn: (work: string) => Promise<T>): Promise<T> {
  const work = await mkdtemp(join(tmpdir(), 'fi-image-work-'));
  try {
    return await fn(work);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Builds one image into a fresh OCI layout at `dir`, tagged `tag`. */
export async function makeImage(dir: string, spec: ImageSpec, tag = 'latest'): Promise<BuiltLayout> {
  return withWorkDir(async (work) => {
    const { image, blobs } = await stageImage(spec, work, 0);
    await writeOciLayout(dir, { manifest: { mediaType: image.mediaType, bytes: image.manifest }, refName: tag, blobs, foreignMediaTypes: true });
    return { dir, tag, digest: image.digest, mediaType: image.mediaType, images: [image] };
  });
}

export interface IndexSpec {
  /** Default 'oci'; the images should use the same. */
  mediaTypes?: MediaTypes;
  images: readonly ImageSpec[];
}

/** Builds a multi-platform image (an OCI index or a Docker manifest list) into a fresh OCI layout. */
export async function makeIndex(dir: string, spec: IndexSpec, tag = 'latest'): Promise<BuiltLayout> {
  const kind = spec.mediaTypes ?? 'oci';
  return withWorkDir(async (work) => {
    const staged: Staged[] = [];
    for (const [n, img] of spec.images.entries()) staged.push(await stageImage({ mediaTypes: kind, ...img }, work, n));
    const index = toJson({
      schemaVersion: 2,
      mediaType: MEDIA[kind].index,
      manifests: staged.map(({ image }) => ({
        mediaType: image.mediaType,
        size: image.manifest.length,
        digest: image.digest,
        platform: image.platform,
      })),
    }, false);
    const blobs: OciBlob[] = staged.flatMap(({ image, blobs: b }) => [
      ...b, { digest: image.digest, size: image.manifest.length, data: image.manifest },
    ]);
    const mediaType = MEDIA[kind].index;
    const { digest } = await writeOciLayout(dir, { manifest: { mediaType, bytes: index }, refName: tag, blobs, foreignMediaTypes: true });
    return { dir, tag, digest, mediaType, images: staged.map((s) => s.image) };
  });
}
