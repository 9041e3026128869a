import { readFileSync } from 'node:fs';
import stringify from 'json-stable-stringify';
import { Hash, parseHash, type HashAlgo } from '../hash/index.js';
import { checkStoreName, contentAddress, isStorePath, makeFixedOutputPath, makeStorePath, makeTextPath, type ContentMethod, type LocalStore, type PathInfo } from '../store/index.js';

/** JSON values a recipe may hold in its arguments. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export interface OutputHash {
  algo: HashAlgo;
  mode: ContentMethod;
  /** SRI form. */
  hash: string;
}

/**
 * A derivation in all but syntax: what to run (a builtin builder), with which arguments and
 * environment, and — for fixed outputs — the hash the result must have.
 */
export interface Recipe {
  name: string;
  builder: string;
  args: { [key: string]: Json };
  env: { [key: string]: string };
  /** Variables taken from the caller's environment at build time (proxies, curl flags). */
  impureEnvVars: string[];
  outputHash?: OutputHash;
  preferLocalBuild: boolean;
  /**
   * Input-addressed recipes: the store paths the builder reads (sorted, unique). Part of the
   * recipe's text, so they decide its output path, as a derivation's inputs do in Nix.
   */
  inputs?: string[];
  /**
   * Recipes whose outputs are among `inputs`, realised first. Not part of the text: their output
   * paths are (as Nix's hashDerivationModulo puts a fixed output's path, not its derivation).
   */
  inputRecipes?: Recipe[];
}

/** nixpkgs lib.fetchers.proxyImpureEnvVars, plus what pull.nix added. */
export const PROXY_IMPURE_ENV_VARS = [
  'http_proxy', 'https_proxy', 'ftp_proxy', 'all_proxy', 'no_proxy',
  'HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'ALL_PROXY', 'NO_PROXY',
  'NIX_SSL_CERT_FILE', 'SSL_CERT_FILE',
];
export const FETCHER_IMPURE_ENV_VARS = [...PROXY_IMPURE_ENV_VARS, 'NIX_CURL_FLAGS', 'NIX_CONNECT_TIMEOUT', 'NIX_HASHED_MIRRORS'];

export function makeRecipe(r: Partial<Recipe> & Pick<Recipe, 'name' | 'builder'>): Recipe {
  checkStoreName(r.name);
  const recipe: Recipe = {
    name: r.name,
    builder: r.builder,
    args: r.args ?? {},
    env: r.env ?? {},
    impureEnvVars: r.impureEnvVars ?? [],
    preferLocalBuild: r.preferLocalBuild ?? false,
  };
  if (r.outputHash) {
    const h = parseHash(r.outputHash.hash, r.outputHash.algo);
    recipe.outputHash = { algo: h.algo, mode: r.outputHash.mode, hash: h.sri };
  }
  if (r.inputs?.length) {
    if (recipe.outputHash) throw new Error(`recipe '${r.name}': a fixed output cannot have inputs`);
    for (const p of r.inputs) if (!isStorePath(p, p.slice(0, p.lastIndexOf('/')))) throw new Error(`recipe '${r.name}': input '${p}' is not a store path`);
    recipe.inputs = [...new Set(r.inputs)].sort();
  }
  if (r.inputRecipes?.length) recipe.inputRecipes = [...r.inputRecipes];
  return recipe;
}

/**
 * The canonical serialisation: sorted keys, no whitespace. This text is what gets stored. Fields
 * that are absent are not written, so recipes without inputs keep the text (and the paths) they
 * always had.
 */
export function serializeRecipe(recipe: Recipe): string {
  const { inputRecipes: _realisedFirst, ...text } = recipe;
  return stringify(text) ?? '{}';
}

/** The store path of the recipe's own text: it references the recipe's inputs. */
export function recipeTextPath(recipe: Recipe, storeDir?: string): string {
  return makeTextPath(recipeFileName(recipe), serializeRecipe(recipe), recipe.inputs ?? [], storeDir);
}

export function recipeFileName(recipe: Recipe): string {
  return `${recipe.name}.recipe.json`;
}

export function declaredHash(recipe: Recipe): Hash | undefined {
  return recipe.outputHash ? parseHash(recipe.outputHash.hash) : undefined;
}

/**
 * The output path, known before any work: from name + declared hash for fixed outputs, from
 * the recipe's own hash otherwise (input-addressed).
 */
export function outputPath(recipe: Recipe, storeDir?: string): string {
  const h = declaredHash(recipe);
  if (h) return makeFixedOutputPath(recipe.outputHash!.mode, h, recipe.name, storeDir ? { storeDir } : {});
  return makeStorePath('output:out', Hash.of('sha256', serializeRecipe(recipe)), recipe.name, storeDir);
}

/** The recipe stored at `recipePath` (a deriver), if it is a valid recipe path of this store. */
export function storedRecipe(store: LocalStore, recipePath: string | undefined): Recipe | undefined {
  if (!recipePath?.endsWith('.recipe.json') || !store.isValid(recipePath)) return undefined;
  try {
    const r = JSON.parse(readFileSync(store.realPath(recipePath), 'utf8')) as Partial<Recipe>;
    if (typeof r.name !== 'string' || typeof r.builder !== 'string') return undefined;
    return makeRecipe({ ...r, name: r.name, builder: r.builder });
  } catch {
    return undefined;
  }
}

/** The content address of a fixed-output recipe's output. */
export function declaredContentAddress(recipe: Recipe): string | undefined {
  const h = declaredHash(recipe);
  return h ? contentAddress(recipe.outputHash!.mode, h) : undefined;
}

/**
 * What the recipe recorded as a path's deriver says about it, when that recipe is in the store
 * and its output is this path: the content address it declares (fixed outputs), or none
 * (input-addressed: built here from it). Undefined when no stored recipe vouches for the path.
 */
export function deriverOf(store: LocalStore, info: PathInfo): { ca?: string } | undefined {
  const r = storedRecipe(store, info.deriver);
  if (!r || outputPath(r, store.storeDir) !== info.path) return undefined;
  const ca = declaredContentAddress(r);
  return ca ? { ca } : {};
}
