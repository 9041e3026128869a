import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { warmFileHashers } from '../nar/index.js';
import { formatRetryNotice } from '../fetch/index.js';
import { toOciImage, uncompressLayerToFile, writeOciLayout, type RepoTag } from '../image/index.js';
import type { BuildContext, Builder } from '../recipe/index.js';
import { RegistryClient, formatPlatform, limitConcurrency, parseReference, type Descriptor, type ResolvedImage } from '../registry/index.js';
import { BlobCache, ContentIndex } from '../store/index.js';
import { SizePredictionMiss, cachedLayerSource, distinctLayers, planLayerSources, writeArchiveInPlace, type LayerSource } from './archive-in-place.js';
import type { PullArgs } from './pull-recipe.js';

export { IMAGE_IMPURE_ENV_VARS, pullRecipe } from './pull-recipe.js';
export type { ImageFormat, PullSpec } from './pull-recipe.js';

/**
 * The digest `reference`'s tag names at the registry now (an index's or a manifest's), for
 * explaining a mismatch: one manifest request, no retries.
 */
export async function currentTagDigest(reference: string, opts: { tlsVerify: boolean; env: NodeJS.ProcessEnv }): Promise<string | undefined> {
  const byTag = parseReference(reference.split('@')[0]!);
  if (!byTag.tag) return undefined;
  const client = new RegistryClient(byTag, {
    tlsVerify: opts.tlsVerify, env: opts.env,
    ...(opts.env.FETCH_IMAGE_CREDS ? { creds: opts.env.FETCH_IMAGE_CREDS } : {}),
    fetch: { env: opts.env, retries: 0, connectTimeoutMs: 5000 },
  });
  return (await client.getManifest(byTag.tag)).digest;
}

function diffIdsOf(img: ResolvedImage): string[] {
  const rootfs = (img.config as { rootfs?: { diff_ids?: unknown } }).rootfs;
  const ids = rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((d): d is string => typeof d === 'string' && /^sha256:[0-9a-f]{64}$/.test(d))) {
    throw new Error(`image config ${img.configDigest} has no valid rootfs.diff_ids`);
  }
  if (ids.length !== img.layers.length) {
    throw new Error(`image config ${img.configDigest} lists ${ids.length} diff_ids for ${img.layers.length} layers`);
  }
  return ids;
}

/**
 * The layer spooled into the blob cache (uncompressed, diff_id checked as it was written), for
 * layers whose size cannot be known before they are inflated; skopeo spools them the same way.
 */
async function spoolLayer(ctx: BuildContext, client: RegistryClient, cache: BlobCache, desc: Descriptor, diffId: string): Promise<LayerSource> {
  await cache.ensure(diffId, undefined, async (tmp) => {
    ctx.progress.start(desc.digest, `layer ${desc.digest.slice(7, 19)}`, desc.size);
    try {
      const stream = await client.openBlob(
        { digest: desc.digest, size: desc.size, urls: desc.urls },
        { onProgress: (got, total) => ctx.progress.update(desc.digest, got, total ?? desc.size) },
      );
      return (await uncompressLayerToFile(stream, tmp)).diffId;
    } finally {
      ctx.progress.finish(desc.digest);
    }
  });
  return cachedLayerSource(cache, diffId);
}

async function ensureBlob(ctx: BuildContext, client: RegistryClient, cache: BlobCache, desc: Descriptor): Promise<string> {
  return cache.ensure(desc.digest, desc.size, async (tmp) => {
    ctx.progress.start(desc.digest, `blob ${desc.digest.slice(7, 19)}`, desc.size);
    try {
      await client.fetchBlob(desc.digest, desc.size, tmp, { onProgress: (got) => ctx.progress.update(desc.digest, got, desc.size), ...(desc.urls ? { urls: desc.urls } : {}) });
      return desc.digest;
    } finally {
      ctx.progress.finish(desc.digest);
    }
  });
}

/**
 * The builtin behind `fetch-image REF`: resolve the reference (and platform), then write the
 * archive skopeo would write, its layers fetched in parallel (or copied from archives the store
 * already has) straight into place and hashed as they land (see archive-in-place.ts).
 */
export const fetchImageBuilder: Builder = async (ctx) => {
  const a = ctx.recipe.args as PullArgs;
  // The archive is hashed by a worker (two for several layers); it boots while the image is resolved.
  if (a.format !== 'oci') warmFileHashers(1);
  const ref = a.imageDigest ? parseReference(`${a.imageReference.split('@')[0]}@${a.imageDigest}`) : parseReference(a.imageReference);
  const client = new RegistryClient(ref, {
    tlsVerify: a.tlsVerify,
    env: ctx.env,
    ...(ctx.env.FETCH_IMAGE_CREDS ? { creds: ctx.env.FETCH_IMAGE_CREDS } : {}),
    ...(ctx.secrets.netrcFile !== undefined ? { netrcFile: ctx.secrets.netrcFile } : {}),
    fetch: { env: ctx.env, ...(ctx.signal ? { signal: ctx.signal } : {}), onRetry: (n) => ctx.warn(formatRetryNotice(n)) },
  });
  const img = await client.resolve({ ...(a.os ? { os: a.os } : {}), ...(a.arch ? { arch: a.arch } : {}), ...(a.variant ? { variant: a.variant } : {}) });
  ctx.log(`resolved ${ref.name}${ref.tag ? `:${ref.tag}` : ''} to ${img.manifestDigest} (${formatPlatform(img.platform)})`);
  if (a.format !== 'oci' && img.layers.length > 1) warmFileHashers(2);
  const cache = new BlobCache(ctx.store.root);
  const limit = limitConcurrency(Number(ctx.env.FETCH_IMAGE_JOBS) || 4);
  const info = {
    imageName: a.imageName,
    imageDigest: img.manifestDigest,
    indexDigest: img.indexDigest ?? null,
    platform: formatPlatform(img.platform),
    os: img.platform.os,
    arch: img.platform.architecture,
    variant: img.platform.variant ?? null,
    finalImageName: a.finalImageName,
    finalImageTag: a.finalImageTag,
  };
  const pinnedArgs = { imageDigest: img.manifestDigest };

  if (a.format === 'oci') {
    const converted = toOciImage({ mediaType: img.manifestMediaType, bytes: img.manifestBytes }, img.configBytes);
    // Each blob once, however often the manifest lists it.
    const blobs = [...new Map(img.layers.map((d) => [d.digest, d])).values()];
    const files = await Promise.all(blobs.map((d) => limit(() => ensureBlob(ctx, client, cache, d))));
    const configDigest = `sha256:${createHash('sha256').update(converted.config).digest('hex')}`;
    await writeOciLayout(ctx.out, {
      manifest: converted.manifest,
      refName: a.finalImageTag,
      blobs: [
        { digest: configDigest, size: converted.config.length, data: converted.config },
        ...blobs.map((d, i) => ({ digest: d.digest, size: d.size, data: () => createReadStream(files[i]!, { highWaterMark: 1 << 20 }) })),
      ],
    });
    return { info, pinnedArgs };
  }

  const diffIds = diffIdsOf(img);
  const repoTags: RepoTag[] = [{ name: parseReference(`${a.finalImageName}:${a.finalImageTag}`).name, tag: a.finalImageTag }];
  const index = new ContentIndex(ctx.store);
  // Sizes known up front (gzip trailers, layers the store has) let the archive be written in
  // place as layers arrive; otherwise, or when a size was wrong, layers are spooled first. A
  // spooled entry found damaged is dropped by the writer, so one more round fetches it again.
  let sources = await planLayerSources(client, cache, index, img.layers, diffIds, limit);
  for (let spooled = 0; ; spooled++) {
    if (!sources) {
      const spool = new Map<string, LayerSource>();
      await Promise.all(distinctLayers(img.layers, diffIds).map(({ desc, diffId }) => limit(async () => spool.set(diffId, await spoolLayer(ctx, client, cache, desc, diffId)))));
      sources = spool;
    }
    try {
      const { ranges, ...hashes } = await writeArchiveInPlace({ ctx, client, config: img.configBytes, layers: img.layers, diffIds, repoTags, sources, limit });
      // Later images with these layers copy them from this archive instead of fetching them.
      const registered = (path: string) => {
        for (const [diffId, range] of ranges) if (!index.lookup(diffId)) index.record(diffId, { path, ...range });
      };
      return { ...hashes, info, pinnedArgs, registered };
    } catch (e) {
      if (!(e instanceof SizePredictionMiss) || spooled > 1) throw e;
      ctx.log(`${e.message}: spooling the layers first`);
      sources = undefined;
    }
  }
};
