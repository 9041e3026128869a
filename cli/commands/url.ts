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
import { buildSecrets, netrcFileFor, splitCurlOptsArg, withNetrcOption, type NetrcArgs } from '../credentials.js';
import { checkCurlOpts, refuseOptions } from '../arg-checks.js';
import { ADD_ROOT_OPTION, addRootIfAsked } from '../add-root.js';

interface UrlArgs extends GlobalArgs, NetrcArgs {
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
  addRoot?: string;
}

/**
 * `--sha256` takes any sha256 encoding (as pullImage's sha256); `--hash` any SRI or prefixed hash.
 * Only when neither option is given at all is there no pin (a prefetch): an empty value, as
 * `--sha256 "$PIN"` gives with PIN unset, is an error, never a prefetch that passes.
 */
export function declaredHashArg(a: { sha256?: string; hash?: string }): Hash | undefined {
  if (a.sha256 !== undefined && a.hash !== undefined) throw new UserError('give either --sha256 or --hash, not both', EXIT.usage);
  for (const [flag, value] of [['--sha256', a.sha256], ['--hash', a.hash]] as const) {
    if (value === undefined) continue;
    if (value.trim() === '') throw new UserError(`empty hash given to ${flag}`, EXIT.usage);
    try {
      return flag === '--sha256' ? parseHash(value, 'sha256') : parseHash(value);
    } catch (e) {
      throw new UserError(`${flag}: ${(e as Error).message}`, EXIT.usage);
    }
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
    withNetrcOption(withSubstituterOptions(y))
      .positional('url', { type: 'string', demandOption: true })
      .option('sha256', { type: 'string', describe: 'expected sha256 (base16, nix32, base64 or SRI)' })
      .option('hash', { type: 'string', describe: 'expected hash as SRI (sha256-…) or algo:digest' })
      .option('name', { type: 'string', describe: 'store path name (default: last URL segment; "source" with --unpack)' })
      .option('unpack', { type: 'boolean', describe: 'unpack tar, tar.gz, tar.xz, tar.zst or zip (one top-level directory stripped) and hash recursively' })
      .option('strip-root', { type: 'boolean', default: true, describe: 'with --unpack: strip the single top-level directory (--no-strip-root keeps the whole tree, as fetchzip stripRoot = false)' })
      .option('retry', { type: 'number', describe: 'retries after a transient network failure (default 5; as curl --retry)' })
      .option('executable', { type: 'boolean', describe: 'make the file executable (hashed recursively)' })
      .option('keep-failed', { type: 'boolean', describe: 'keep the build directory on failure and print its path' })
      .option('hashed-mirror', { type: 'string', array: true, nargs: 1, describe: 'try <mirror>/sha256/<hex> first (repeatable; also NIX_HASHED_MIRRORS)' })
      .option('curl-opts', { type: 'string', describe: 'extra curl flags, as pull.nix curlOpts (see README for the supported table); their credentials (-u, -U, -H Authorization/Cookie) are never stored' })
      .option('base32', { type: 'boolean', describe: 'without a hash: print the nix32 hash instead of SRI' })
      .option('add-root', ADD_ROOT_OPTION)
      .example('$0 url https://example.org/f.tar.gz --sha256 0abc… --add-root f', 'fetch, verify, print the store path; root f keeps it from gc')
      .example('$0 url https://example.org/f.tar.gz', 'prefetch: print the hash to pin (and the path on stderr)')
      .example('$0 url --unpack https://example.org/src.tar.xz --hash sha256-…', 'like fetchzip')
      .example('$0 url --unpack --no-strip-root https://example.org/flat.zip', 'keep every top-level entry (fetchzip stripRoot = false)')
      .example('$0 url file:///media/usb/src.tar.gz --sha256 0abc…', 'from mounted media: no network at all')
      .example("NIX_CURL_FLAGS='-k --retry 3' $0 url https://internal/x", 'curl flags from the environment')
      .example("$0 url --curl-opts '-u alice:s3cret' https://internal/x", 'basic auth for that host only; not stored in the recipe')
      .example('$0 url --netrc-file ./netrc https://internal/x', "credentials from a netrc file ('machine internal login alice password s3cret')") as unknown as Argv<UrlArgs>, // yargs' inferred kebab/camel keys
  handler: async (a) => {
    if (a.url === '') throw new UserError('empty URL', EXIT.usage);
    const hash = declaredHashArg(a);
    refuseOptions({ '--base32': a.base32 === true && hash !== undefined }, 'with a hash (--base32 chooses how a prefetch prints the hash it found)');
    refuseOptions({ '--base32': a.base32 === true && a.json === true }, 'with --json (the JSON has both forms: hash and sha256)');
    await checkCurlOpts(a.curlOpts);
    const store = openStore(a);
    // Credentials in --curl-opts go to the build, not into the recipe (a world-readable store path).
    const curlOpts = splitCurlOptsArg(a.curlOpts);
    let recipe;
    try {
      recipe = fetchUrlRecipe({
        url: a.url, ...(a.name ? { name: a.name } : {}), unpack: a.unpack ?? false, executable: a.executable ?? false,
        ...(a.stripRoot === false ? { stripRoot: false } : {}), ...(curlOpts.stored ? { curlOpts: curlOpts.stored } : {}), ...(hash ? { hash } : {}),
      });
    } catch (e) {
      throw new UserError((e as Error).message, EXIT.usage);
    }
    const retry = retryCurlFlag(a.retry);
    const opts = {
      builders: BUILTIN_BUILDERS,
      secrets: buildSecrets(curlOpts.secret, netrcFileFor(a)),
      ...(retry ? { callerEnv: { ...process.env, NIX_CURL_FLAGS: [process.env.NIX_CURL_FLAGS, retry].filter(Boolean).join(' ') } } : {}),
      substituters: substitutersFor(a),
      keepFailed: a.keepFailed ?? false,
      progress: terminalProgress(a),
      log: (l: string) => note(a, l),
      warn: (l: string) => warn(a, l),
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
