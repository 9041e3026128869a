import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Hash } from '../hash/index.js';
import { netrcLookup, readNetrc } from '../fetch/index.js';
import { makeRecipe, type BuildSecrets, type Builder, type Recipe } from '../recipe/index.js';
import { DOCKER_HUB_V1_INDEX, checkV1ImageId, pullV1, writeV1Tarball } from '../registry/index.js';
import { sanitizeStoreName } from '../store/index.js';
import { IMAGE_IMPURE_ENV_VARS } from './fetch-image.js';
import { FETCH_IMAGE_V1_BUILDER, V1_TARBALL_BUILDER } from './builtins.js';

export interface PullV1Spec {
  imageName: string;
  imageTag?: string;
  imageId?: string;
  indexUrl?: string;
  registryUrl?: string;
  name?: string;
  hash?: Hash;
}

/** The recipe of pull.nix (2016): a recursive fixed output named `<imageName>-<imageTag>`. */
export function pullV1Recipe(spec: PullV1Spec): Recipe {
  const imageTag = spec.imageTag ?? 'latest';
  const base = {
    name: spec.name ?? sanitizeStoreName(`${spec.imageName}-${imageTag}`),
    builder: FETCH_IMAGE_V1_BUILDER,
    args: {
      imageName: spec.imageName,
      imageTag,
      imageId: spec.imageId ? checkV1ImageId(spec.imageId, '--image-id') : null,
      indexUrl: spec.indexUrl ?? DOCKER_HUB_V1_INDEX,
      registryUrl: spec.registryUrl ?? null,
    },
    impureEnvVars: IMAGE_IMPURE_ENV_VARS,
    preferLocalBuild: true,
  };
  return makeRecipe(spec.hash ? { ...base, outputHash: { algo: spec.hash.algo, mode: 'recursive', hash: spec.hash.sri } } : base);
}

/** --creds, else the netrc file's entry for the index host (the v1 index is where Basic goes). */
function credentialsFrom(env: NodeJS.ProcessEnv, secrets: BuildSecrets, indexUrl: string): { username: string; password: string } | undefined {
  const creds = env.FETCH_IMAGE_CREDS;
  if (!creds) {
    const entry = secrets.netrcFile === undefined ? undefined : netrcLookup(readNetrc(secrets.netrcFile), new URL(indexUrl).hostname);
    return entry && { username: entry.login, password: entry.password };
  }
  const colon = creds.indexOf(':');
  if (colon < 0) throw new Error('--creds must be user:password');
  return { username: creds.slice(0, colon), password: creds.slice(colon + 1) };
}

export const fetchImageV1Builder: Builder = async (ctx) => {
  const a = ctx.recipe.args as { imageName: string; imageTag: string; imageId: string | null; indexUrl: string; registryUrl: string | null };
  const credentials = credentialsFrom(ctx.env, ctx.secrets, a.indexUrl);
  const r = await pullV1({
    name: a.imageName,
    tag: a.imageTag,
    ...(a.imageId ? { imageId: a.imageId } : {}),
    indexUrl: a.indexUrl,
    ...(a.registryUrl ? { registryUrl: a.registryUrl } : {}),
    out: ctx.out,
    ...(credentials ? { credentials } : {}),
    fetch: { env: ctx.env },
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    onProgress: (e) => {
      if (e.kind === 'layer-bytes') {
        ctx.progress.start(e.id, `layer ${e.id.slice(0, 12)}`, e.total);
        ctx.progress.update(e.id, e.received, e.total);
      } else if (e.kind === 'layer-done') ctx.progress.finish(e.id);
      else if (e.kind === 'layer-resume') ctx.log(`layer ${e.id.slice(0, 12)}: resuming at byte ${e.at} (${e.reason})`);
    },
  });
  return {
    info: { imageName: a.imageName, imageTag: a.imageTag, imageId: r.imageId, registryUrl: r.registryUrl, layers: r.layers },
    pinnedArgs: { imageId: r.imageId },
  };
};

/**
 * The deterministic `.tar.gz` pull.nix made of the directory, loadable by `podman load`: an
 * input-addressed recipe whose only input is the directory's store path.
 */
export function v1TarballRecipe(dirStorePath: string, imageName: string, imageTag: string): Recipe {
  return makeRecipe({
    name: sanitizeStoreName(`${imageName}-${imageTag}.tar.gz`),
    builder: V1_TARBALL_BUILDER,
    args: { dir: dirStorePath, imageName, imageTag },
    preferLocalBuild: true,
  });
}

/** The ancestry of the pulled image, image first, read back from the directory. */
function layersOf(dir: string, imageName: string, imageTag: string): string[] {
  const repos = JSON.parse(readFileSync(join(dir, 'repositories'), 'utf8')) as Record<string, Record<string, string>>;
  let id: string | undefined = repos[imageName]?.[imageTag] ?? Object.values(Object.values(repos)[0] ?? {})[0];
  const layers: string[] = [];
  while (id) {
    if (layers.includes(id)) throw new Error(`layer ${id} appears twice in the parent chain`);
    layers.push(checkV1ImageId(id, 'layer id'));
    id = (JSON.parse(readFileSync(join(dir, id, 'json'), 'utf8')) as { parent?: string }).parent;
  }
  return layers;
}

export const v1TarballBuilder: Builder = async (ctx) => {
  const a = ctx.recipe.args as { dir: string; imageName: string; imageTag: string };
  const dir = ctx.store.realPath(a.dir);
  ctx.store.requireInfo(a.dir);
  await writeV1Tarball({ dir, dest: ctx.out, name: a.imageName, tag: a.imageTag, layers: layersOf(dir, a.imageName, a.imageTag) });
};
