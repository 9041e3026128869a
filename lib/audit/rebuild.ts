import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { parseHash } from '../hash/index.js';
import { BUILTIN_BUILDERS, DEFAULT_SOURCE_DATE_EPOCH, SANDBOX_ENV_VAR, executeBuildPlan, planBuild, realisePlanInputs } from '../builders/index.js';
import { checkRealise, recipeTextPath, type RealiseOptions } from '../recipe/index.js';
import type { LocalStore } from '../store/index.js';
import type { BuildPin } from './lock-file.js';

/** A rebuilt output: where it is now, and how to drop it (or keep it beside the first). */
export interface Rebuilt {
  /** The output path the spec's recipe gives now. */
  path: string;
  realPath: string;
  /** Removes the fresh output, or with keep moves it to `<root>/nix/var/fetch-image/checks/<name>.check` and returns that path. */
  finish(keep: boolean): string | undefined;
}

/**
 * Builds a spec again, as `nix-build --check`: when its output is valid in `store`, the builder
 * runs once more in a private directory (the store is not changed); otherwise it is built for
 * real in `scratch` (inputs fetched there).
 */
export async function rebuildSpec(store: LocalStore, scratch: () => LocalStore, specFile: string, opts: Pick<RealiseOptions, 'callerEnv' | 'log' | 'signal'>): Promise<Rebuilt> {
  const realise: RealiseOptions = {
    builders: BUILTIN_BUILDERS, log: opts.log ?? (() => undefined),
    callerEnv: { ...(opts.callerEnv ?? process.env), [SANDBOX_ENV_VAR]: 'auto' },
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
  const planOpts = { format: 'docker-archive' as const, sourceDateEpoch: DEFAULT_SOURCE_DATE_EPOCH, rootStage: true };
  const plan = await planBuild(store, specFile, planOpts);
  if (store.isValid(plan.outPath)) {
    await realisePlanInputs(store, plan, realise);
    const r = await checkRealise(store, plan.recipe, realise);
    return {
      path: plan.outPath, realPath: r.freshPath,
      finish(keep) {
        if (!keep) { r.discard(); return undefined; }
        const dir = join(store.root, 'nix', 'var', 'fetch-image', 'checks');
        mkdirSync(dir, { recursive: true });
        const kept = join(dir, `${basename(plan.outPath)}.check`);
        renameSync(r.freshPath, kept);
        r.discard();
        return kept;
      },
    };
  }
  const s = scratch();
  const other = await planBuild(s, specFile, planOpts);
  const r = await executeBuildPlan(s, other, realise);
  return { path: r.path, realPath: s.realPath(r.path), finish: (keep) => (keep ? s.realPath(r.path) : undefined) };
}

/** Builds a spec (no work when its output is valid) and returns its lock entry; `spec` is recorded relative to `lockDir`. */
export async function lockBuild(store: LocalStore, specFile: string, lockDir: string, opts: Pick<RealiseOptions, 'callerEnv' | 'log'>): Promise<BuildPin> {
  const realise: RealiseOptions = { builders: BUILTIN_BUILDERS, log: opts.log ?? (() => undefined), callerEnv: { ...(opts.callerEnv ?? process.env), [SANDBOX_ENV_VAR]: 'auto' } };
  const plan = await planBuild(store, specFile, { format: 'docker-archive', sourceDateEpoch: DEFAULT_SOURCE_DATE_EPOCH, rootStage: true });
  const r = await executeBuildPlan(store, plan, realise);
  return {
    spec: relative(lockDir, resolve(specFile)) || basename(specFile),
    specSha256: createHash('sha256').update(readFileSync(specFile)).digest('hex'),
    recipePath: recipeTextPath(plan.recipe, store.storeDir),
    storePath: r.path,
    narHash: parseHash(r.info.narHash).sri,
  };
}
