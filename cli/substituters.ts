import type { Argv } from 'yargs';
import { defaultSubstituters } from '../lib/builders/builtins.js';
import { loadMirrorConfig, type MirrorConfig } from '../lib/mirror/config.js';
import type { Substituter } from '../lib/recipe/index.js';
import { EXIT, UserError } from './errors.js';

/** Options a fetching command adds to take binary caches as substituters (see mirrorConfigFromArgs). */
export function withSubstituterOptions<T>(y: Argv<T>): Argv<T> {
  return y
    .option('substituter', { type: 'string', array: true, nargs: 1, describe: 'binary cache to try first: directory, file://, http(s):// (repeatable; also config file)' })
    .option('trusted-key', { type: 'string', array: true, nargs: 1, describe: 'public key NAME:BASE64 whose signatures are trusted (repeatable)' });
}

/** The mirror config file merged with the command line; a bad file or key is a usage error. */
export function mirrorConfigFromArgs(a: { substituter?: string[]; trustedKey?: string[]; checkSigs?: boolean }, env: NodeJS.ProcessEnv = process.env): MirrorConfig {
  try {
    return loadMirrorConfig(env, {
      substituters: a.substituter ?? [],
      trustedPublicKeys: a.trustedKey ?? [],
      ...(a.checkSigs === false ? { requireSigs: false } : {}),
    });
  } catch (e) {
    throw new UserError((e as Error).message, EXIT.usage);
  }
}

/**
 * Binary caches first (--substituter, FETCH_IMAGE_SUBSTITUTERS, the config file): that is how an
 * offline machine gets a pinned path; then hashed mirrors for flat URL fetches. The binary-cache
 * code (NAR reader, decompressors, signatures) is loaded only if a cache is actually asked.
 */
export function substitutersFor(a: { substituter?: string[]; trustedKey?: string[]; hashedMirror?: string[] }): Substituter[] {
  const cfg = mirrorConfigFromArgs(a);
  const caches: Substituter = {
    name: 'binary caches',
    async substitute(...args) {
      const { binaryCacheSubstituter } = await import('../lib/mirror/substituter.js');
      return binaryCacheSubstituter(cfg).substitute(...args);
    },
  };
  return [...(cfg.substituters.length ? [caches] : []), ...defaultSubstituters({ hashedMirrors: a.hashedMirror ?? [] })];
}
