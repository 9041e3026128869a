import { downloadFromHashedMirrors, mirrorsFromEnv } from '../fetch/index.js';
import { parseHash } from '../hash/index.js';
import type { Recipe, SubstituteContext, Substituter } from '../recipe/index.js';

/**
 * Hashed mirrors (`<mirror>/<algo>/<base16>`, NIX_HASHED_MIRRORS) as a substituter: tried for
 * flat URL outputs before the builder runs. Credentials from curl flags stay with the recipe's
 * own URL; what a mirror serves is checked against the declared hash (here and again by
 * realise()), so a wrong or lying mirror only costs time.
 */
export function hashedMirrorSubstituter(extraMirrors: readonly string[] = []): Substituter {
  return {
    name: 'hashed mirrors',
    async substitute(_path: string, recipe: Recipe, out: string, ctx: SubstituteContext): Promise<boolean> {
      const oh = recipe.outputHash;
      const url = recipe.args.url;
      if (!oh || oh.mode !== 'flat' || typeof url !== 'string') return false;
      const mirrors = [...extraMirrors, ...mirrorsFromEnv(ctx.env)];
      if (!mirrors.length) return false;
      const r = await downloadFromHashedMirrors(url, out, parseHash(oh.hash), {
        mirrors, env: ctx.env, onSkip: (u, why) => ctx.log(`hashed mirror ${u}: ${why}`),
      });
      return r !== undefined;
    },
  };
}
