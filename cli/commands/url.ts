import type { Argv, CommandModule } from 'yargs';
import { BUILTIN_BUILDERS } from '../../lib/builders/builtins.js';
import { fetchUrlRecipe, outputModeOf } from '../../lib/builders/fetch-url.js';
import { parseHash, type Hash } from '../../lib/hash/index.js';
import { HashMismatchError, prefetch, realise } from '../../lib/recipe/index.js';
import { emit, note, openStore, type GlobalArgs } from '../context.js';
import { substitutersFor, withSubstituterOptions } from '../substituters.js';
import { EXIT, UserError } from '../errors.js';
import { terminalProgress } from '../progress.js';
import { ADD_ROOT_OPTION, addRootIfAsked } from '../add-root.js';

interface UrlArgs extends GlobalArgs {
  url: string;
  sha256?: string;
  hash?: string;
  name?: string;
  unpack?: boolean;
  executable?: boolean;
  keepFailed?: boolean;
  hashedMirror?: string[];
  curlOpts?: string;
  base32?: boolean;
  substituter?: string[];
  trustedKey?: string[];
  addRoot?: string;
}

/** `--sha256` takes any sha256 encoding (as pullImage's sha256); `--hash` any SRI or prefixed hash. */
export function declaredHashArg(a: { sha256?: string; hash?: string }): Hash | undefined {
  if (a.sha256 && a.hash) throw new UserError('give either --sha256 or --hash, not both', EXIT.usage);
  try {
    if (a.sha256) return parseHash(a.sha256, 'sha256');
    if (a.hash) return parseHash(a.hash);
  } catch (e) {
    throw new UserError((e as Error).message, EXIT.usage);
  }
  return undefined;
}

/** Turns realise() errors into exit codes: 102 for a hash mismatch, as Nix's builders use. */
export function asUserError(e: unknown): never {
  if (e instanceof HashMismatchError) throw new UserError(e.message, EXIT.hashMismatch);
  throw e;
}

export const urlCommand: CommandModule<GlobalArgs, UrlArgs> = {
  command: 'url <url>',
  describe: 'Fetch a URL into the store as a fixed output (like fetchurl / nix-prefetch-url)',
  builder: (y) =>
    withSubstituterOptions(y)
      .positional('url', { type: 'string', demandOption: true })
      .option('sha256', { type: 'string', describe: 'expected sha256 (base16, nix32, base64 or SRI)' })
      .option('hash', { type: 'string', describe: 'expected hash as SRI (sha256-…) or algo:digest' })
      .option('name', { type: 'string', describe: 'store path name (default: last URL segment; "source" with --unpack)' })
      .option('unpack', { type: 'boolean', describe: 'unpack tar, tar.gz, tar.xz, tar.zst or zip (one top-level directory stripped) and hash recursively' })
      .option('executable', { type: 'boolean', describe: 'make the file executable (hashed recursively)' })
      .option('keep-failed', { type: 'boolean', describe: 'keep the build directory on failure and print its path' })
      .option('hashed-mirror', { type: 'string', array: true, describe: 'try <mirror>/sha256/<hex> first (repeatable; also NIX_HASHED_MIRRORS)' })
      .option('curl-opts', { type: 'string', describe: 'extra curl flags, as pull.nix curlOpts (see README for the supported table)' })
      .option('base32', { type: 'boolean', describe: 'without a hash: print the nix32 hash instead of SRI' })
      .option('add-root', ADD_ROOT_OPTION)
      .example('$0 url https://example.org/f.tar.gz --sha256 0abc… --add-root f', 'fetch, verify, print the store path; root f keeps it from gc')
      .example('$0 url https://example.org/f.tar.gz', 'prefetch: print the hash to pin (and the path on stderr)')
      .example('$0 url --unpack https://example.org/src.tar.xz --hash sha256-…', 'like fetchzip')
      .example("NIX_CURL_FLAGS='-k --retry 3' $0 url https://internal/x", 'curl flags from the environment') as Argv<UrlArgs>,
  handler: async (a) => {
    const store = openStore(a);
    const hash = declaredHashArg(a);
    const recipe = fetchUrlRecipe({
      url: a.url, ...(a.name ? { name: a.name } : {}), unpack: a.unpack ?? false, executable: a.executable ?? false,
      ...(a.curlOpts ? { curlOpts: a.curlOpts } : {}), ...(hash ? { hash } : {}),
    });
    const opts = {
      builders: BUILTIN_BUILDERS,
      substituters: substitutersFor(a),
      keepFailed: a.keepFailed ?? false,
      progress: terminalProgress(a),
      log: (l: string) => note(a, l),
    };
    if (hash) {
      const r = await realise(store, recipe, opts).catch(asUserError);
      addRootIfAsked(a, store, r.path);
      emit(a, { storePath: r.path, path: store.realPath(r.path), hash: hash.sri, source: r.source }, () => r.path);
      return;
    }
    const r = await prefetch(store, recipe, outputModeOf({ unpack: a.unpack ?? false, executable: a.executable ?? false }), opts).catch(asUserError);
    addRootIfAsked(a, store, r.path);
    if (!a.json && !a.quiet) process.stderr.write(`path is '${r.path}'\n`);
    emit(a, { storePath: r.path, path: store.realPath(r.path), hash: r.hash.sri, sha256: r.hash.nix32, url: a.url, name: recipe.name },
      () => (a.base32 ? r.hash.nix32 : r.hash.sri));
  },
};
