// The build-image builder: a thin joint (DESIGN.md). It reads the recipe, prepares the layer's
// roots (materialised for extraCommands), computes the closure and hands everything to
// lib/build's image writer.
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { materialiseRoots, runExtraCommands, writeImage, type ClosurePath, type LayerInput, type RootSource } from '../build/index.js';
import { outputPath, type Builder } from '../recipe/index.js';
import { parseStorePath, type LocalStore } from '../store/index.js';
import type { BuildImageArgs } from './build-image-recipe.js';
import { writeBuildInfo, type BuildInfo } from './build-info.js';
import { expandShadowSetupForLayerDir } from './shadow-text.js';

/** The base's real file: a docker-archive, compressed or not (the writer reads both). */
function baseArchive(store: LocalStore, storePath: string): string {
  const real = store.realPath(storePath);
  if (!statSync(real).isFile()) throw new Error(`fromImage ${storePath} is not a docker-archive file (an OCI layout cannot be a base; build or pull it as docker-archive)`);
  return real;
}

/** `created: "now"`, resolved at build time to whole seconds. */
const nowIso = () => new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');

export const buildImageBuilder: Builder = async (ctx) => {
  const a = ctx.recipe.args as BuildImageArgs;
  const { store } = ctx;
  const self = outputPath(ctx.recipe, store.storeDir);
  const tag = a.tag ?? parseStorePath(self, store.storeDir).hashPart;

  // The closure: everything the copyToRoot paths reference, and the paths the config and scripts name.
  const roots = (ctx.recipe.inputs ?? []).filter((p) => p !== a.fromImage);
  const closure: ClosurePath[] = store.closure(roots).map((p) => ({ storePath: p, realPath: store.realPath(p) }));
  const sources: RootSource[] = a.copyToRoot.map((p, i) => {
    const dir = store.realPath(p);
    if (!statSync(dir).isDirectory()) throw new Error(`copyToRoot[${i}] (${p}) is a file: copyToRoot entries are directories whose contents form the root (fetch archives with "unpack": true)`);
    return { dir, label: `copyToRoot[${i}] (${p})`, storePath: p };
  });
  const copied = new Set(a.copyToRoot);
  const dedupeAgainst = closure.filter((c) => copied.has(c.storePath));

  const extraCommands = expandShadowSetupForLayerDir(a.extraCommands, a.shadowSetupVersion === '2016' ? '2016' : 'current');
  const base = a.fromImage ? { archive: baseArchive(store, a.fromImage) } : undefined;
  let layerRoots = sources;
  let owner: LayerInput['owner'] = { uid: a.uid, gid: a.gid };
  if (a.runAsRoot !== undefined) {
    // Loaded only here: the sandbox code is not needed by builds without runAsRoot.
    const { runAsRootLayer } = await import('./run-as-root.js');
    const dir = await runAsRootLayer(ctx, a, sources, base && a.fromImage ? { archive: base.archive, storePath: a.fromImage } : undefined, extraCommands);
    layerRoots = [{ dir, label: 'runAsRoot layer' }];
    owner = 'keep';
  } else if (extraCommands) {
    const root = join(ctx.tmp, 'root');
    const scratch = join(ctx.tmp, 'scratch');
    mkdirSync(root, { mode: 0o755 });
    mkdirSync(scratch, { mode: 0o700 });
    materialiseRoots(root, sources, a.keepContentsDirlinks);
    await runExtraCommands(extraCommands, { root, tmp: scratch, storeDir: store.storeDir, sourceDateEpoch: a.sourceDateEpoch }, {
      log: ctx.log, ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    layerRoots = [{ dir: root, label: 'copyToRoot after extraCommands' }];
  }

  const progressId = `build ${a.name}`;
  ctx.progress.start(progressId, `layer of ${a.name}:${tag}`);
  let result;
  try {
    result = await writeImage({
      ...(base ? { base } : {}),
      layer: {
        roots: layerRoots, keepContentsDirlinks: a.keepContentsDirlinks, owner,
        closure, dedupeAgainst, sourceDateEpoch: a.sourceDateEpoch,
      },
      storeDir: store.storeDir, name: a.name, tag, config: a.config,
      architecture: a.architecture, created: a.created === 'now' ? nowIso() : a.created,
      compressor: a.compressor, format: a.format, out: ctx.out,
    }, { ...(ctx.signal ? { signal: ctx.signal } : {}), progress: (bytes) => ctx.progress.update(progressId, bytes) });
  } finally {
    ctx.progress.finish(progressId);
  }
  const info: BuildInfo = {
    imageName: a.name, imageTag: tag, layerDiffId: result.layerDiffId, configDigest: result.configDigest,
    added: result.added, skipped: result.skipped, closureSize: result.closureSize,
  };
  return {
    info,
    registered: (storePath) => writeBuildInfo(store, storePath, info),
  };
};
