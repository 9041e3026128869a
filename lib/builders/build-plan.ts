// From a build spec file to the build-image recipe: every input resolved to a store path (pins
// and URLs to their fixed-output recipes, local paths to the path `store add` gives, nested specs
// to their own plans) without changing the store. executeBuildPlan() then makes the inputs valid
// and realises the recipe; a valid output means no work at all.
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
// The spec modules directly, not lib/build's face: that would load the image writer into every
// run, and an unchanged spec's run does nothing but plan (it must start fast).
import { BuildSpecError } from '../build/spec-errors.js';
import { checkBuildSpec, parseBuildSpecText, type BuildSpec, type ImagePin } from '../build/spec.js';
import { storePathsIn } from '../build/store-refs.js';
import { parseHash } from '../hash/index.js';
import { HashMismatchError, outputPath, realise, type RealiseOptions, type RealiseResult, type Recipe } from '../recipe/index.js';
import { checkStoreName, type LocalStore } from '../store/index.js';
import { buildImageRecipe, type BuildFormat } from './build-image-recipe.js';
import { RUN_AS_ROOT_UNAVAILABLE } from './build-info.js';
import { fetchUrlRecipe } from './fetch-url-recipe.js';
import { pullRecipe } from './pull-recipe.js';
import { addLocalInput, localInputPath, type LocalInput } from './local-input.js';

export type PlannedInput =
  | { key: string; kind: 'store'; storePath: string }
  | { key: string; kind: 'fetch'; storePath: string; recipe: Recipe }
  | { key: string; kind: 'local'; storePath: string; source: string; name: string; local: LocalInput }
  | { key: string; kind: 'spec'; storePath: string; plan: BuildPlan };

export interface BuildPlan {
  file: string;
  spec: BuildSpec;
  warnings: string[];
  inputs: PlannedInput[];
  recipe: Recipe;
  outPath: string;
}

export interface PlanOptions {
  format: BuildFormat;
  sourceDateEpoch: number;
  /** Whether the root stage is available; without it a spec with runAsRoot is refused up front. */
  rootStage: boolean;
  /** Use only remembered hashes of local paths: a tree not seen unchanged before throws UncachedLocalInput. */
  cachedLocalOnly?: boolean;
}

/** A local path would have to be hashed (planBuild with cachedLocalOnly). */
export class UncachedLocalInput extends Error {}

function readSpecFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BuildSpecError(file, '', code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a build spec' : (e as Error).message);
  }
}

function pinRecipe(pin: ImagePin, file: string, storeDir: string): Recipe {
  let hash;
  try {
    hash = parseHash(pin.hash, 'sha256');
  } catch (e) {
    throw new BuildSpecError(file, 'fromImage.hash', (e as Error).message);
  }
  let recipe: Recipe;
  try {
    recipe = pullRecipe({
      reference: `${pin.imageName}@${pin.imageDigest}`, hash,
      ...(pin.finalImageName ? { finalImageName: pin.finalImageName } : {}),
      ...(pin.finalImageTag ? { finalImageTag: pin.finalImageTag } : {}),
      ...(pin.os ? { os: pin.os } : {}), ...(pin.arch ? { arch: pin.arch } : {}), ...(pin.variant ? { variant: pin.variant } : {}),
      ...(pin.tlsVerify !== undefined ? { tlsVerify: pin.tlsVerify } : {}),
    });
  } catch (e) {
    throw new BuildSpecError(file, 'fromImage', (e as Error).message);
  }
  const p = outputPath(recipe, storeDir);
  if (pin.storePath?.startsWith(storeDir + '/') && pin.storePath !== p) {
    throw new BuildSpecError(file, 'fromImage.storePath', `the pin's hash and names give ${p}, not ${pin.storePath}: is the hash or a name wrong?`);
  }
  return recipe;
}

function requireValid(store: LocalStore, p: string, file: string, key: string): void {
  if (!store.isValid(p)) throw new BuildSpecError(file, key, `${p} is not valid in the store at ${store.root} (add, pull or build it first)`);
}

/** Plans the build of the spec in `file` (and of any spec it builds on). Reads, hashes, changes nothing. */
export async function planBuild(store: LocalStore, file: string, opts: PlanOptions, seen: readonly string[] = []): Promise<BuildPlan> {
  const abs = resolve(file);
  if (seen.includes(abs)) throw new BuildSpecError(file, 'fromImage', `builds on itself (${[...seen, abs].join(' → ')})`);
  const { spec, warnings } = checkBuildSpec(await parseBuildSpecText(readSpecFile(file), file), file, store.storeDir);
  if (spec.runAsRoot !== null && !opts.rootStage) throw new BuildSpecError(file, 'runAsRoot', RUN_AS_ROOT_UNAVAILABLE);
  const here = dirname(abs);
  const inputs: PlannedInput[] = [];
  const inputRecipes: Recipe[] = [];
  let fromImage: string | null = null;

  const from = spec.fromImage;
  if (from?.kind === 'store') {
    requireValid(store, from.path, file, 'fromImage');
    inputs.push({ key: 'fromImage', kind: 'store', storePath: from.path });
    fromImage = from.path;
  } else if (from?.kind === 'pin') {
    const recipe = pinRecipe(from.pin, file, store.storeDir);
    fromImage = outputPath(recipe, store.storeDir);
    inputs.push({ key: 'fromImage', kind: 'fetch', storePath: fromImage, recipe });
    inputRecipes.push(recipe);
  } else if (from?.kind === 'spec') {
    const nestedFile = resolve(here, from.path);
    const plan = await planBuild(store, nestedFile, { ...opts, format: 'docker-archive' }, [...seen, abs]);
    warnings.push(...plan.warnings);
    fromImage = plan.outPath;
    inputs.push({ key: 'fromImage', kind: 'spec', storePath: fromImage, plan });
    inputRecipes.push(plan.recipe);
  }

  const copyToRoot: string[] = [];
  for (const [i, entry] of spec.copyToRoot.entries()) {
    const key = `copyToRoot[${i}]`;
    if (entry.kind === 'store') {
      requireValid(store, entry.path, file, key);
      inputs.push({ key, kind: 'store', storePath: entry.path });
      copyToRoot.push(entry.path);
    } else if (entry.kind === 'local') {
      const source = resolve(here, entry.path);
      const st = statSync(source, { throwIfNoEntry: false });
      if (!st) throw new BuildSpecError(file, key, `${entry.path}: no such file or directory (relative paths are taken from ${here})`);
      if (!st.isDirectory()) throw new BuildSpecError(file, key, `${entry.path} is a file: copyToRoot entries are directories whose contents form the root`);
      const name = basename(source);
      try {
        checkStoreName(name);
      } catch (e) {
        throw new BuildSpecError(file, key, (e as Error).message);
      }
      const local = await localInputPath(store, source, name, opts.cachedLocalOnly ?? false);
      if (!local) throw new UncachedLocalInput(`${source} is not remembered unchanged`);
      inputs.push({ key, kind: 'local', storePath: local.storePath, source, name, local });
      copyToRoot.push(local.storePath);
    } else {
      let recipe: Recipe;
      try {
        recipe = fetchUrlRecipe({ url: entry.url, hash: parseHash(entry.hash, 'sha256'), unpack: entry.unpack, ...(entry.name ? { name: entry.name } : {}) });
      } catch (e) {
        throw new BuildSpecError(file, key, (e as Error).message);
      }
      const p = outputPath(recipe, store.storeDir);
      inputs.push({ key, kind: 'fetch', storePath: p, recipe });
      inputRecipes.push(recipe);
      copyToRoot.push(p);
    }
  }

  // Store paths the config and the scripts name join the closure (nixpkgs scans the layer's json and the script).
  const textReferences = new Set<string>();
  const texts: [string, string][] = [['config', JSON.stringify(spec.config ?? {})], ['extraCommands', spec.extraCommands], ['runAsRoot', spec.runAsRoot ?? '']];
  for (const [key, text] of texts) {
    for (const p of storePathsIn(text, store.storeDir)) {
      requireValid(store, p, file, key);
      textReferences.add(p);
    }
  }

  const recipe = buildImageRecipe({
    spec, fromImage, copyToRoot, textReferences: [...textReferences], inputRecipes, format: opts.format, sourceDateEpoch: opts.sourceDateEpoch,
  });
  return { file, spec, warnings, inputs, recipe, outPath: outputPath(recipe, store.storeDir) };
}

/** One line naming the spec and the key, for an input that could not be made valid. */
function inputError(plan: BuildPlan, key: string, e: unknown): Error {
  if (e instanceof HashMismatchError) {
    return new InputHashMismatch(`${plan.file}: ${key}: hash mismatch: the spec pins ${e.specified.sri}, the content is ${e.got.sri}`);
  }
  if (e instanceof BuildSpecError || e instanceof InputHashMismatch) return e;
  return new Error(`${plan.file}: ${key}: ${(e as Error).message.split('\n')[0]}`);
}

/** A pinned input whose content has another hash (the CLI exits 102, as for any fixed output). */
export class InputHashMismatch extends Error {}

/**
 * Makes every input valid — fixed-output fetches first (no network when valid), then base
 * builds, then local paths (added last, so a failing fetch leaves the store as it was) — and
 * realises the recipe. A valid output returns at once.
 */
export async function executeBuildPlan(store: LocalStore, plan: BuildPlan, opts: RealiseOptions): Promise<RealiseResult> {
  const done = store.pathInfo(plan.outPath);
  if (done) return { path: plan.outPath, info: done, source: 'store' };
  await realisePlanInputs(store, plan, opts);
  try {
    return await realise(store, plan.recipe, opts);
  } catch (e) {
    throw new Error(`${plan.file}: ${(e as Error).message}`, { cause: e });
  }
}

/** Makes every input of the plan valid (fetches, nested builds, local paths): what building it needs. */
export async function realisePlanInputs(store: LocalStore, plan: BuildPlan, opts: RealiseOptions): Promise<void> {
  const order = ['fetch', 'spec', 'local', 'store'] as const;
  for (const kind of order) {
    for (const input of plan.inputs) {
      if (input.kind !== kind) continue;
      try {
        if (input.kind === 'fetch') await realise(store, input.recipe, opts);
        else if (input.kind === 'spec') await executeBuildPlan(store, input.plan, opts);
        else if (input.kind === 'local') await addLocalInput(store, input.source, input.name, input.local);
      } catch (e) {
        throw inputError(plan, input.key, e);
      }
    }
  }
}
