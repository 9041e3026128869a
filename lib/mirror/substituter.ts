// Binary caches as a source of store paths: directly into the store with full metadata
// (substituteFromCaches), or as a realise() Substituter that restores a fixed output to `out`.
import { rmSync } from 'node:fs';
import { FetchError, redactUrl, type FetchOptions } from '../fetch/index.js';
import type { Recipe, SubstituteContext, Substituter } from '../recipe/index.js';
import { checkContentAddressContent, checkContentAddressPath, parseStorePath, type LocalStore, type PathInfo } from '../store/index.js';
import { openCache } from './cache-source.js';
import type { MirrorConfig } from './config.js';
import { parseTrustedKeys } from './config.js';

import { checkCacheStoreDir, checkSignature, fetchNar, importFromCache, readNarInfo, type ImportOptions } from './import.js';

/** A cache that is down should not hold up a build for long: one retry, as Nix's fallback would. */
const LOOKUP: FetchOptions = { retries: 1, retryBaseMs: 500 };

export interface SubstituteOptions {
  /** Default true: refuse narinfos without a valid signature by one of the trusted keys. */
  checkSigs?: boolean;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  fetch?: FetchOptions;
  /** Receives why each cache could not supply the path (unreachable, bad signature, …); a miss is not a failure. */
  failures?: string[];
}

/**
 * One line for a cache that failed: `cache http://… unreachable (connection refused)` when it
 * could not be reached at all, so that a cache that is down is not mistaken for a miss.
 */
export function describeCacheFailure(spec: string, e: unknown): string {
  const shown = redactUrl(spec).replace(/(?<=:\/\/[^/]+)\/$/, '');
  if (e instanceof FetchError && (e.kind === 'network' || e.kind === 'timeout')) {
    const why = e.message.includes(' failed: ') ? e.message.slice(e.message.indexOf(' failed: ') + 9) : e.message;
    return `cache ${shown} unreachable (${why})`;
  }
  return `cache ${shown}: ${(e as Error).message.split('\n')[0]}`;
}

/**
 * Makes `storePath` (and its closure) valid by importing it from the first cache that has it,
 * with its narinfo's references, signatures, CA and deriver. Returns the registered info, or
 * undefined when no cache could supply a good copy (each failure is logged). The caller must
 * not hold the lock of `storePath` (import takes it to register).
 */
export async function substituteFromCaches(
  store: LocalStore, storePath: string, caches: readonly string[], trustedKeys: readonly string[], opts: SubstituteOptions = {},
): Promise<PathInfo | undefined> {
  const have = store.pathInfo(storePath);
  if (have) return have;
  const hashPart = parseStorePath(storePath, store.storeDir).hashPart;
  const importOpts: ImportOptions = { trustedKeys: parseTrustedKeys(trustedKeys), checkSigs: opts.checkSigs ?? true };
  if (opts.log) importOpts.log = opts.log;
  for (const spec of caches) {
    try {
      const cache = openCache(spec, { env: opts.env ?? process.env, ...LOOKUP, ...opts.fetch });
      if (!(await readNarInfo(cache, hashPart, store.storeDir))) continue;
      await importFromCache(store, cache, [storePath], importOpts);
      return store.requireInfo(storePath);
    } catch (e) {
      const line = describeCacheFailure(spec, e);
      opts.failures?.push(line);
      opts.log?.(line);
    }
  }
  return undefined;
}

/**
 * A realise() substituter over binary caches. It checks the narinfo's signature, that its CA
 * addresses the wanted path, and the NAR's hashes, then restores the NAR to `out`; realise()
 * re-checks the declared hash and registers. A narinfo with references is skipped: realise()
 * registers fixed outputs without references (use substituteFromCaches for such paths).
 */
export function binaryCacheSubstituter(cfg: Pick<MirrorConfig, 'substituters' | 'trustedPublicKeys' | 'requireSigs'>, fetch: FetchOptions = {}): Substituter {
  const keys = parseTrustedKeys(cfg.trustedPublicKeys);
  return {
    name: 'binary caches',
    async substitute(storePath: string, _recipe: Recipe, out: string, ctx: SubstituteContext): Promise<boolean> {
      const hashPart = parseStorePath(storePath, ctx.store.storeDir).hashPart;
      for (const spec of cfg.substituters) {
        try {
          // The builder's curl flags hold credentials for the recipe's own origin, not the cache's.
          const cache = openCache(spec, { env: ctx.env, ...LOOKUP, credentialsFor: null, ...fetch });
          await checkCacheStoreDir(cache, ctx.store.storeDir);
          const ni = await readNarInfo(cache, hashPart, ctx.store.storeDir);
          if (!ni) continue;
          const where = `${cache.display}/${hashPart}.narinfo`;
          if (ni.storePath !== storePath) throw new Error(`${where} describes ${ni.storePath}, not ${storePath}`);
          if (ni.references.some((r) => r !== storePath)) {
            ctx.log(`${where}: ${storePath} has references; a fixed output cannot be substituted with them`);
            continue;
          }
          checkSignature(ni, where, { trustedKeys: keys, checkSigs: cfg.requireSigs });
          const ca = ni.ca ? checkContentAddressPath(storePath, ni.ca, ni.references, ctx.store.storeDir, where) : undefined;
          ctx.progress.start(storePath, `${hashPart.slice(0, 8)} from ${cache.display}`, ni.narSize);
          try {
            await fetchNar(cache, ni, out, (n) => ctx.progress.update(storePath, n));
          } finally {
            ctx.progress.finish(storePath);
          }
          if (ca) await checkContentAddressContent(ca, ni.narHash, out, where);
          return true;
        } catch (e) {
          rmSync(out, { recursive: true, force: true });
          ctx.log(describeCacheFailure(spec, e));
        }
      }
      return false;
    },
  };
}
