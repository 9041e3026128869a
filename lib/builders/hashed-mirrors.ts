import { downloadToFile, hashedMirrorUrls, mirrorsFromEnv, redactUrl } from '../fetch/index.js';
import { parseHash } from '../hash/index.js';
import type { Recipe, SubstituteContext, Substituter } from '../recipe/index.js';

/**
 * Hashed mirrors (`<mirror>/<algo>/<base16>`, NIX_HASHED_MIRRORS) as a substituter: tried for
 * flat outputs before the builder runs. What a mirror serves is checked against the declared
 * hash by realise(), so a wrong or lying mirror only costs time.
 */
export function hashedMirrorSubstituter(extraMirrors: readonly string[] = []): Substituter {
  return {
    name: 'hashed mirrors',
    async substitute(_path: string, recipe: Recipe, out: string, ctx: SubstituteContext): Promise<boolean> {
      const oh = recipe.outputHash;
      if (!oh || oh.mode !== 'flat') return false;
      const mirrors = [...extraMirrors, ...mirrorsFromEnv(ctx.env)];
      const hash = parseHash(oh.hash);
      for (const url of hashedMirrorUrls(hash, mirrors)) {
        try {
          const r = await downloadToFile(url, out, hash.algo, { env: ctx.env, retries: 0 });
          if (r.hash.equals(hash)) return true;
          ctx.log(`hashed mirror ${redactUrl(url)} served other content (${r.hash.sri})`);
        } catch (e) {
          ctx.log(`hashed mirror ${redactUrl(url)}: ${(e as Error).message}`);
        }
      }
      return false;
    },
  };
}
