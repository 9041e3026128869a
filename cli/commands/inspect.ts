import { existsSync, readFileSync, statSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { inspectImage, type InspectedImage } from '../../lib/build/index.js';
import { BUILD_IMAGE_BUILDER, FETCH_IMAGE_BUILDER, planBuild } from '../../lib/builders/index.js';
import type { Json, Recipe } from '../../lib/recipe/index.js';
import type { LocalStore } from '../../lib/store/index.js';
import { emit, openStore, type GlobalArgs } from '../context.js';
import { EXIT, UserError } from '../errors.js';
import { sourceDateEpochOf } from './build.js';

interface InspectArgs extends GlobalArgs {
  target: string;
}

/** The recipe that made a store path (its deriver), if the store has it. */
function deriverRecipe(store: LocalStore, storePath: string): Recipe | undefined {
  const deriver = store.pathInfo(storePath)?.deriver;
  if (!deriver || !store.isValid(deriver)) return undefined;
  return JSON.parse(readFileSync(store.realPath(deriver), 'utf8')) as Recipe;
}

/** A pulled image's pin, from its recipe: what `fetch-image REF --json` printed. */
function pinOf(storePath: string, r: Recipe): { [key: string]: Json } {
  const a = r.args;
  return {
    reference: a.imageReference ?? null, imageName: a.imageName ?? null, imageDigest: a.imageDigest ?? null,
    hash: r.outputHash?.hash ?? null, finalImageName: a.finalImageName ?? null, finalImageTag: a.finalImageTag ?? null, storePath,
  };
}

/** Where each layer came from: the base's layers (its store path and pin), then this build's one. */
function layerOrigins(store: LocalStore, storePath: string, recipe: Recipe | undefined, image: InspectedImage): Json[] {
  if (recipe?.builder === FETCH_IMAGE_BUILDER) {
    const pin = pinOf(storePath, recipe);
    return image.layers.map(() => ({ from: 'registry', reference: pin.reference ?? null, imageDigest: pin.imageDigest ?? null }));
  }
  if (recipe?.builder !== BUILD_IMAGE_BUILDER) return image.layers.map(() => ({ from: 'unknown' }));
  const base = typeof recipe.args.fromImage === 'string' ? recipe.args.fromImage : null;
  const baseRecipe = base ? deriverRecipe(store, base) : undefined;
  const baseDigest = baseRecipe?.builder === FETCH_IMAGE_BUILDER ? baseRecipe.args.imageDigest ?? null : null;
  return image.layers.map((_, i): Json => (i === image.layers.length - 1 ? { from: 'this build', storePath } : { from: 'base', storePath: base, imageDigest: baseDigest }));
}

async function describePath(store: LocalStore, storePath: string): Promise<{ [key: string]: Json }> {
  const recipe = deriverRecipe(store, storePath);
  const image = await inspectImage(store.realPath(storePath));
  const origins = layerOrigins(store, storePath, recipe, image);
  const out: { [key: string]: Json } = {
    storePath, path: store.realPath(storePath), format: image.format, repoTags: image.repoTags,
    deriver: store.pathInfo(storePath)?.deriver ?? null,
  };
  if (recipe?.builder === BUILD_IMAGE_BUILDER) out.buildArgs = recipe.args;
  if (recipe?.builder === FETCH_IMAGE_BUILDER) out.pin = pinOf(storePath, recipe);
  out.config = image.config;
  out.layers = image.layers.map((l, i) => ({ diffId: l.diffId, size: l.size, files: l.files, origin: origins[i] ?? null }));
  return out;
}

/** The newest pulled image in the store whose recipe names `ref` (as written, or name:tag). */
function findPulled(store: LocalStore, ref: string): string | undefined {
  let best: { path: string; time: number } | undefined;
  for (const info of store.list()) {
    if (!info.deriver?.endsWith('.recipe.json') || !store.isValid(info.deriver)) continue;
    let r: Recipe;
    try {
      r = JSON.parse(readFileSync(store.realPath(info.deriver), 'utf8')) as Recipe;
    } catch {
      continue;
    }
    if (r.builder !== FETCH_IMAGE_BUILDER) continue;
    const a = r.args;
    const names = [a.imageReference, a.imageName, `${String(a.imageName)}:${String(a.finalImageTag)}`, `${String(a.finalImageName)}:${String(a.finalImageTag)}`];
    if (names.includes(ref) && (!best || info.registrationTime > best.time)) best = { path: info.path, time: info.registrationTime };
  }
  return best?.path;
}

function humanLines(d: { [key: string]: Json }): string[] {
  const lines = [`${String(d.storePath)}${d.valid === false ? '   (not built yet)' : ''}`];
  if (d.buildArgs) lines.push('build arguments:', ...JSON.stringify(d.buildArgs, null, 2).split('\n').map((l) => `  ${l}`));
  if (d.pin) lines.push('pin:', ...JSON.stringify(d.pin, null, 2).split('\n').map((l) => `  ${l}`));
  if (d.config) lines.push('config:', ...JSON.stringify(d.config, null, 2).split('\n').map((l) => `  ${l}`));
  if (Array.isArray(d.layers)) {
    lines.push('layers:');
    for (const l of d.layers as { diffId: string; size: number; files: number | null; origin: { [key: string]: Json } | null }[]) {
      const o = l.origin ?? {};
      const from = o.from === 'base' ? `base ${String(o.storePath)}${o.imageDigest ? ` (${String(o.imageDigest)})` : ''}` : o.from === 'registry' ? `${String(o.reference)} (${String(o.imageDigest)})` : String(o.from ?? 'unknown');
      lines.push(`  ${l.diffId}  ${l.size} bytes  ${l.files ?? '?'} entries  from ${from}`);
    }
  }
  return lines;
}

async function inspectHandler(a: InspectArgs): Promise<void> {
  const store = openStore(a);
  const t = a.target;
  let storePath: string | undefined;
  try {
    const p = store.toStorePath(t);
    if (store.isValid(p)) storePath = p;
    else if (t.startsWith(store.storeDir + '/') || t.startsWith(store.physicalStoreDir + '/')) throw new UserError(`${t} is not valid in the store at ${store.root}`);
  } catch (e) {
    if (e instanceof UserError) throw e;
  }
  if (!storePath && /\.(json|ya?ml)$/i.test(t) && existsSync(t) && statSync(t).isFile()) {
    const plan = await planBuild(store, t, { format: 'docker-archive', sourceDateEpoch: sourceDateEpochOf({}), rootStage: true }).catch((e: Error) => {
      throw new UserError(e.message);
    });
    const valid = store.isValid(plan.outPath);
    const d: { [key: string]: Json } = valid ? await describePath(store, plan.outPath) : { storePath: plan.outPath, buildArgs: plan.recipe.args };
    d.valid = valid;
    d.inputs = plan.inputs.map((i) => ({ key: i.key, storePath: i.storePath, valid: store.isValid(i.storePath) }));
    emit(a, d, () => humanLines(d));
    return;
  }
  storePath ??= findPulled(store, t);
  if (!storePath) throw new UserError(`${t}: not a valid store path, a build spec, or an image reference pulled into the store at ${store.root}`, EXIT.failure);
  const d = await describePath(store, storePath);
  emit(a, d, () => humanLines(d));
}

export const inspectCommand: CommandModule<GlobalArgs, InspectArgs> = {
  command: 'inspect <target>',
  describe: 'Show how an image was made: build arguments or pin, config, and each layer (diff_id, size, entries, origin)',
  builder: (y: Argv<GlobalArgs>) => y
    .positional('target', { type: 'string', demandOption: true, describe: 'a store path (or its real path), a build spec, or a pulled image reference' })
    .example('$0 inspect /nix/store/…-docker-image-app.tar.gz', 'build arguments, config and layers of a built image')
    .example('$0 inspect app.json', 'what the spec would build, and whether it is already valid')
    .example('$0 inspect --json ubuntu:22.04', 'the pin and layers of a pulled image') as unknown as Argv<InspectArgs>,
  handler: inspectHandler,
};
