export {
  FETCHER_IMPURE_ENV_VARS, PROXY_IMPURE_ENV_VARS, declaredContentAddress, declaredHash, deriverOf, makeRecipe, outputPath, recipeFileName,
  recipeTextPath, serializeRecipe, storedRecipe,
} from './recipe.js';
export type { Json, OutputHash, Recipe } from './recipe.js';
export { builderEnv, prefetch, realise } from './realise.js';
export type { BuildContext, BuildSecrets, BuildOutcome, Builder, RealiseOptions, RealiseResult, SubstituteContext, Substituter } from './realise.js';
export { SILENT_PROGRESS } from './progress.js';
export type { ProgressSink } from './progress.js';
export { BuildFailedError, HashMismatchError, InvalidStoredPathError } from './errors.js';
export { NotValidForCheckError, checkRealise } from './check.js';
export type { CheckResult } from './check.js';
