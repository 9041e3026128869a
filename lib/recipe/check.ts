import { statSync } from 'node:fs';
import { hashFlatAndNar, hashPath } from '../nar/index.js';
import { parseHash, type Hash } from '../hash/index.js';
import type { LocalStore } from '../store/index.js';
import { builderEnv, realiseInputs, runBuilder, type RealiseOptions } from './realise.js';
import { outputPath, recipeTextPath, type Recipe } from './recipe.js';

/** What a second build of a valid output gave (`nix-build --check`). */
export interface CheckResult {
  path: string;
  /** The registered output's NAR hash and the fresh build's. */
  registered: Hash;
  fresh: Hash;
  same: boolean;
  /** The fresh output, until discard() (kept for a file-level report or --keep-failed). */
  freshPath: string;
  discard(): void;
}

export class NotValidForCheckError extends Error {
  constructor(path: string) {
    super(`${path} is not valid, so checking is not possible: build it first`);
    this.name = 'NotValidForCheckError';
  }
}

/**
 * Runs the builder of a recipe whose output is already valid once more, in a private directory,
 * and compares the result with the registered output bit for bit, as `nix-build --check` does.
 * The store is not changed: the fresh output stays in its temporary directory.
 */
export async function checkRealise(store: LocalStore, recipe: Recipe, opts: RealiseOptions): Promise<CheckResult> {
  const path = outputPath(recipe, store.storeDir);
  const info = store.pathInfo(path);
  if (!info) throw new NotValidForCheckError(path);
  await realiseInputs(store, recipe, opts);
  const env = builderEnv(recipe, opts.callerEnv ?? process.env);
  const built = await runBuilder(store, recipe, env, { ...opts, keepFailed: false }, recipeTextPath(recipe, store.storeDir));
  try {
    const fresh = statSync(built.out).isFile() ? (await hashFlatAndNar(built.out)).nar.hash : (await hashPath(built.out)).hash;
    const registered = parseHash(info.narHash);
    return { path, registered, fresh, same: fresh.equals(registered), freshPath: built.out, discard: built.discard };
  } catch (e) {
    built.discard();
    throw e;
  }
}
