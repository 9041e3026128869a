import { lstat, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeBuildArchive } from './archive.js';
import { openBaseArchive, scanBaseStore, type BaseArchive } from './base-image.js';
import { placeClosure, type BaseStoreView } from './closure-placement.js';
import { findDuplicates } from './dedupe.js';
import { imageConfig, sha256Digest } from './image-config.js';
import type { ImageInput, ImageResult, WriteImageOptions } from './image-types.js';
import { layerEntries, writeLayerTar } from './layer-tar.js';
import { mergeRoots } from './merge.js';
import { writeBuildOci } from './oci.js';

/**
 * buildImage's output from its parts: exactly one new layer (the merged roots, then the
 * closure's store paths the base does not hold) on top of the base's unchanged layers, the
 * config, and the docker-archive (or OCI layout) around them. Memory stays flat: the layer
 * tree holds names and stat data only, file bytes stream from disk to the output.
 */

function check(input: ImageInput): void {
  const e = (msg: string) => new Error(`writeImage: ${msg}`);
  if (!input.name) throw e('the image name is empty');
  if (!input.tag) throw e('the image tag is empty');
  if (!['none', 'gz', 'zstd'].includes(input.compressor)) throw e(`unknown compressor ${input.compressor} (none, gz or zstd)`);
  if (!['docker-archive', 'oci'].includes(input.format)) throw e(`unknown format ${input.format} (docker-archive or oci)`);
  const sde = input.layer.sourceDateEpoch;
  if (!Number.isSafeInteger(sde) || sde < 0) throw e(`sourceDateEpoch must be a whole number of seconds ≥ 0, got ${sde}`);
  if (!input.storeDir.startsWith('/') || input.storeDir.endsWith('/')) throw e(`storeDir must be absolute without a trailing '/', got ${input.storeDir}`);
  const { owner } = input.layer;
  if (owner !== 'keep' && !(Number.isSafeInteger(owner.uid) && owner.uid >= 0 && Number.isSafeInteger(owner.gid) && owner.gid >= 0)) {
    throw e('owner uid and gid must be whole numbers ≥ 0');
  }
}

export async function writeImage(input: ImageInput, opts: WriteImageOptions = {}): Promise<ImageResult> {
  check(input);
  if (await lstat(input.out).then(() => true, () => false)) throw new Error(`writeImage: ${input.out} already exists`);
  const tmpDir = dirname(input.out);
  const layerPath = join(tmpDir, `.layer-${randomBytes(6).toString('hex')}.tar`);
  let base: BaseArchive | null = null;
  try {
    base = input.base ? await openBaseArchive(input.base.archive, tmpDir) : null;
    const view: BaseStoreView = base ? await scanBaseStore(base, input.storeDir) : { storePaths: new Set(), dirs: new Set() };
    const { layer } = input;
    const tree = await mergeRoots(layer.roots, {
      owner: layer.owner, keepContentsDirlinks: layer.keepContentsDirlinks, storeDir: input.storeDir, closure: layer.closure,
    });
    const placement = await placeClosure(tree, layer.closure, input.storeDir, view);
    const pairs = await findDuplicates(tree, layer.dedupeAgainst ?? [], new Set(placement.added), input.storeDir, opts.signal);
    const written = await writeLayerTar(layerEntries(tree, pairs), layerPath, layer.sourceDateEpoch, opts);

    const diffIds = [...(base?.layers.map((l) => l.diffId) ?? []), written.diffId];
    const config = imageConfig({ baseConfig: base?.configJson ?? null, config: input.config, architecture: input.architecture, created: input.created, diffIds });
    const configDigest = sha256Digest(config);
    const newLayer = { path: layerPath, size: written.size, diffId: written.diffId };
    if (input.format === 'oci') {
      await writeBuildOci(input.out, { base, layer: newLayer, config, configDigest, tag: input.tag, compressor: input.compressor, tmpDir }, opts.signal);
    } else {
      const progress = opts.progress;
      await writeBuildArchive(input.out, {
        base, layer: newLayer, config, configDigest, repoTag: { name: input.name, tag: input.tag }, mtime: layer.sourceDateEpoch, compressor: input.compressor,
      }, { signal: opts.signal, progress: progress && ((n) => progress(written.size + n)) });
    }
    return { layerDiffId: written.diffId, configDigest, added: placement.added, skipped: placement.skipped, closureSize: placement.closureSize };
  } finally {
    await rm(layerPath, { force: true });
    await base?.close();
  }
}
