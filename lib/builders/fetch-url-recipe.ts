// The fetch-url recipe alone, without the downloader: a build spec's URL entries need only its path.
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Hash } from '../hash/index.js';
// The modules themselves, not lib/fetch's face: that loads the whole HTTP stack.
import { redactUrl } from '../fetch/errors.js';
import { splitSecretCurlOpts } from '../fetch/curl-flags.js';
import { FETCHER_IMPURE_ENV_VARS, makeRecipe, type Recipe } from '../recipe/index.js';
import { sanitizeStoreName } from '../store/index.js';
import { FETCH_URL_BUILDER } from './builtins.js';

export interface FetchUrlSpec {
  url: string;
  name?: string;
  /** Unpack an archive into a directory (hashed recursively), as nixpkgs fetchzip. */
  unpack?: boolean;
  /** With unpack: strip the single top-level directory (default true, fetchzip's stripRoot). */
  stripRoot?: boolean;
  /** Mark the file executable (hashed recursively, as nix-prefetch-url --executable). */
  executable?: boolean;
  /** Extra curl flags, as pull.nix's curlOpts, without credentials (see splitSecretCurlOpts): they are stored in the recipe. */
  curlOpts?: string;
  hash?: Hash;
}

const SCHEMES = new Set(['http:', 'https:', 'file:']);

/** The URL, or an error saying what is wrong with it: no scheme, an unknown one, a file URL naming a host. */
function parseFetchUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    const hint = text.startsWith('/') || existsSync(text) ? pathToFileURL(text).href : `https://${text}`;
    throw new Error(`'${redactUrl(text)}' is not a URL (no scheme): write ${hint} (http, https or file)`);
  }
  if (!SCHEMES.has(url.protocol)) throw new Error(`unsupported URL scheme '${url.protocol}' in ${redactUrl(text)} (use http, https or file)`);
  if (url.protocol === 'file:' && url.host !== '' && url.host !== 'localhost') throw new Error(`${text}: a file URL names a local path (file:///path), not host '${url.host}'`);
  return url;
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
  const url = parseFetchUrl(spec.url);
  if (spec.unpack && spec.executable) throw new Error('--unpack and --executable cannot be combined');
  if (spec.stripRoot === false && !spec.unpack) throw new Error('--no-strip-root applies only with --unpack');
  if (url.username || url.password) {
    throw new Error(`credentials in the URL ${redactUrl(spec.url)} would be stored in the recipe, a world-readable store path: give them with --curl-opts '-u USER:PASSWORD' or a netrc file (--netrc-file, NETRC, ~/.netrc), which are never stored`);
  }
  if (spec.curlOpts && splitSecretCurlOpts(spec.curlOpts, 'curlOpts').stored !== spec.curlOpts) {
    throw new Error('curlOpts with credentials would be stored in the recipe: split them off with splitSecretCurlOpts and give them as the build\'s secrets');
  }
  const base = {
    name: spec.name ?? defaultUrlName(spec.url, spec.unpack ?? false),
    builder: FETCH_URL_BUILDER,
    // stripRoot only when off, so that the recipes of earlier unpacking fetches stay the same.
    args: { url: spec.url, unpack: spec.unpack ?? false, executable: spec.executable ?? false, curlOpts: spec.curlOpts ?? '', ...(spec.stripRoot === false ? { stripRoot: false } : {}) },
    impureEnvVars: FETCHER_IMPURE_ENV_VARS,
    preferLocalBuild: true,
  };
  return makeRecipe(spec.hash ? { ...base, outputHash: { algo: spec.hash.algo, mode: outputModeOf(spec), hash: spec.hash.sri } } : base);
}
