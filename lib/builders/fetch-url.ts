import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { downloadToFile, redactUrl } from '../fetch/index.js';
import type { Hash } from '../hash/index.js';
import { FETCHER_IMPURE_ENV_VARS, makeRecipe, type Builder, type Recipe } from '../recipe/index.js';
import { sanitizeStoreName } from '../store/index.js';

export const FETCH_URL_BUILDER = 'builtin:fetch-url';

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

export const fetchUrlBuilder: Builder = async (ctx) => {
  const { url, unpack, executable, curlOpts } = ctx.recipe.args as { url: string; unpack: boolean; executable: boolean; curlOpts: string };
  const shown = redactUrl(url);
  const download = unpack ? join(ctx.tmp, 'download') : ctx.out;
  ctx.progress.start(url, shown);
  try {
    const opts = {
      env: ctx.env,
      ...(curlOpts ? { curlOpts } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      onProgress: (received: number, total: number | undefined) => ctx.progress.update(url, received, total),
    };
    await downloadToFile(url, download, 'sha256', opts);
  } finally {
    ctx.progress.finish(url);
  }
  if (unpack) {
    // Loaded only when asked for: the decompressors are not needed by plain downloads.
    const { unpackArchive } = await import('../unpack/index.js');
    await unpackArchive(download, ctx.out, { stripOneTopLevel: true });
  } else if (executable) {
    chmodSync(ctx.out, 0o755);
  }
};
