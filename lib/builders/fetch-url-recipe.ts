// The fetch-url recipe alone, without the downloader: a build spec's URL entries need only its path.
import type { Hash } from '../hash/index.js';
// redactUrl's own module, not lib/fetch's face: that loads the whole HTTP stack.
import { redactUrl } from '../fetch/errors.js';
import { FETCHER_IMPURE_ENV_VARS, makeRecipe, type Recipe } from '../recipe/index.js';
import { sanitizeStoreName } from '../store/index.js';
import { FETCH_URL_BUILDER } from './builtins.js';

export interface FetchUrlSpec {
  url: string;
  name?: string;
  /** Unpack an archive into a directory (hashed recursively), as nixpkgs fetchzip. */
  unpack?: boolean;
  /** Mark the file executable (hashed recursively, as nix-prefetch-url --executable). */
  executable?: boolean;
  /** Extra curl flags, as pull.nix's curlOpts. */
  curlOpts?: string;
  hash?: Hash;
}

/** The store name nix-prefetch-url would choose: the URL's last path segment. */
export function defaultUrlName(url: string, unpack: boolean): string {
  if (unpack) return 'source';
  const last = new URL(url).pathname.split('/').filter(Boolean).pop();
  return sanitizeStoreName(decodeURIComponent(last ?? 'download'));
}

export function outputModeOf(spec: Pick<FetchUrlSpec, 'unpack' | 'executable'>): 'flat' | 'recursive' {
  return spec.unpack || spec.executable ? 'recursive' : 'flat';
}

export function fetchUrlRecipe(spec: FetchUrlSpec): Recipe {
  const url = new URL(spec.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`unsupported URL scheme '${url.protocol}' in ${redactUrl(spec.url)} (use http or https)`);
  if (spec.unpack && spec.executable) throw new Error('--unpack and --executable cannot be combined');
  if (url.username || url.password) throw new Error(`credentials in the URL would be stored in the recipe: pass them with --curl-opts '-u user:pass' or NIX_CURL_FLAGS`);
  const base = {
    name: spec.name ?? defaultUrlName(spec.url, spec.unpack ?? false),
    builder: FETCH_URL_BUILDER,
    args: { url: spec.url, unpack: spec.unpack ?? false, executable: spec.executable ?? false, curlOpts: spec.curlOpts ?? '' },
    impureEnvVars: FETCHER_IMPURE_ENV_VARS,
    preferLocalBuild: true,
  };
  return makeRecipe(spec.hash ? { ...base, outputHash: { algo: spec.hash.algo, mode: outputModeOf(spec), hash: spec.hash.sri } } : base);
}

