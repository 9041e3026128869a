import type { Argv, CommandModule } from 'yargs';
import { BUILTIN_BUILDERS } from '../../lib/builders/builtins.js';
import { fetchUrlRecipe, outputModeOf } from '../../lib/builders/fetch-url.js';
import { parseHash, type Hash } from '../../lib/hash/index.js';
import { HashMismatchError, prefetch, realise } from '../../lib/recipe/index.js';
import { emit, note, openStore, warn, type GlobalArgs } from '../context.js';
import { retryCurlFlag } from '../network-options.js';
import { substitutersFor, withSubstituterOptions } from '../substituters.js';
import { EXIT, UserError } from '../errors.js';
import { terminalProgress } from '../progress.js';

interface UrlArgs extends GlobalArgs {
  url: string;
  sha256?: string;
  hash?: string;
  name?: string;
  unpack?: boolean;
  stripRoot: boolean;
  retry?: number;
  executable?: boolean;
  keepFailed?: boolean;
  hashedMirror?: string[];
  curlOpts?: string;
  base32?: boolean;
  substituter?: string[];
  trustedKey?: string[];
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
      .option('strip-root', { type: 'boolean', default: true, describe: 'with --unpack: strip the single top-level directory (--no-strip-root keeps the whole tree, as fetchzip stripRoot = false)' })
      .option('retry', { type: 'number', describe: 'retries after a transient network failure (default 5; as curl --retry)' })
      .option('executable', { type: 'boolean', describe: 'make the file executable (hashed recursively)' })
      .option('keep-failed', { type: 'boolean', describe: 'keep the build directory on failure and print its path' })
      .option('hashed-mirror', { type: 'string', array: true, describe: 'try <mirror>/sha256/<hex> first (repeatable; also NIX_HASHED_MIRRORS)' })
      .option('curl-opts', { type: 'string', describe: 'extra curl flags, as pull.nix curlOpts (see README for the supported table)' })
      .option('base32', { type: 'boolean', describe: 'without a hash: print the nix32 hash instead of SRI' })
      .example('$0 url https://example.org/f.tar.gz --sha256 0abc…', 'fetch, verify, print the store path')
      .example('$0 url https://example.org/f.tar.gz', 'prefetch: print the hash to pin (and the path on stderr)')
      .example('$0 url --unpack https://example.org/src.tar.xz --hash sha256-…', 'like fetchzip')
      .example('$0 url --unpack --no-strip-root https://example.org/flat.zip', 'keep every top-level entry (fetchzip stripRoot = false)')
      .example('$0 url file:///media/usb/src.tar.gz --sha256 0abc…', 'from mounted media: no network at all')
      .example("NIX_CURL_FLAGS='-k --retry 3' $0 url https://internal/x", 'curl flags from the environment') as unknown as Argv<UrlArgs>, // yargs' inferred kebab/camel keys
  handler: async (a) => {
    const store = openStore(a);
    const hash = declaredHashArg(a);
    let recipe;
    try {
      recipe = fetchUrlRecipe({
        url: a.url, ...(a.name ? { name: a.name } : {}), unpack: a.unpack ?? false, executable: a.executable ?? false,
        ...(a.stripRoot === false ? { stripRoot: false } : {}), ...(a.curlOpts ? { curlOpts: a.curlOpts } : {}), ...(hash ? { hash } : {}),
      });
    } catch (e) {
      throw new UserError((e as Error).message, EXIT.usage);
    }
    const retry = retryCurlFlag(a.retry);
    const opts = {
      builders: BUILTIN_BUILDERS,
      ...(retry ? { callerEnv: { ...process.env, NIX_CURL_FLAGS: [process.env.NIX_CURL_FLAGS, retry].filter(Boolean).join(' ') } } : {}),
      substituters: substitutersFor(a),
      keepFailed: a.keepFailed ?? false,
      progress: terminalProgress(a),
      log: (l: string) => note(a, l),
      warn: (l: string) => warn(a, l),
    };
    if (hash) {
      const r = await realise(store, recipe, opts).catch(asUserError);
      emit(a, { storePath: r.path, path: store.realPath(r.path), hash: hash.sri, source: r.source }, () => r.path);
      return;
    }
    const r = await prefetch(store, recipe, outputModeOf({ unpack: a.unpack ?? false, executable: a.executable ?? false }), opts);
    if (!a.json && !a.quiet) process.stderr.write(`path is '${r.path}'\n`);
    emit(a, { storePath: r.path, path: store.realPath(r.path), hash: r.hash.sri, sha256: r.hash.nix32, url: a.url, name: recipe.name },
      () => (a.base32 ? r.hash.nix32 : r.hash.sri));
  },
};
