import { chmodSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { openDownload, redactUrl, type FetchOptions } from '../fetch/index.js';
import { Hash } from '../hash/index.js';
import { RegularFileNarHasher } from '../nar/index.js';
import type { BuildOutcome } from '../recipe/index.js';
import { FETCHER_IMPURE_ENV_VARS, makeRecipe, type Builder, type Recipe } from '../recipe/index.js';
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

/**
 * Streams `url` into `dest`, computing the flat sha256 and — when the server announced the size —
 * the NAR hash of the file in the same pass, so realise() need not read the file again.
 */
async function downloadHashed(url: string, dest: string, executable: boolean, opts: FetchOptions): Promise<Pick<BuildOutcome, 'flatSha256' | 'nar'>> {
  const fh = await open(dest, 'w', 0o644);
  try {
    let flat = createHash('sha256');
    let nar: RegularFileNarHasher | undefined;
    let pos = 0;
    const dl = await openDownload(url, {
      ...opts,
      onRestart: async () => {
        await fh.truncate(0);
        pos = 0;
        flat = createHash('sha256');
        nar = dl.total !== undefined ? new RegularFileNarHasher(dl.total, executable) : undefined;
      },
    });
    if (dl.total !== undefined) nar = new RegularFileNarHasher(dl.total, executable);
    for await (const chunk of dl) {
      flat.update(chunk);
      nar?.update(chunk);
      for (let off = 0; off < chunk.length;) {
        const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, pos);
        off += bytesWritten;
        pos += bytesWritten;
      }
    }
    const flatSha256 = new Hash('sha256', flat.digest());
    try {
      return nar ? { flatSha256, nar: nar.digest() } : { flatSha256 };
    } catch {
      return { flatSha256 }; // the announced size was wrong: realise() hashes the file itself
    }
  } finally {
    await fh.close();
  }
}

export const fetchUrlBuilder: Builder = async (ctx) => {
  const { url, unpack, executable, curlOpts } = ctx.recipe.args as { url: string; unpack: boolean; executable: boolean; curlOpts: string };
  const shown = redactUrl(url);
  const download = unpack ? join(ctx.tmp, 'download') : ctx.out;
  ctx.progress.start(url, shown);
  let hashes: Pick<BuildOutcome, 'flatSha256' | 'nar'>;
  try {
    hashes = await downloadHashed(url, download, executable, {
      env: ctx.env,
      ...(curlOpts ? { curlOpts } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      onProgress: (received: number, total: number | undefined) => ctx.progress.update(url, received, total),
    });
  } finally {
    ctx.progress.finish(url);
  }
  if (!unpack) {
    if (executable) chmodSync(ctx.out, 0o755);
    // A flat output's declared hash is the flat one; an --executable one is hashed as a NAR.
    return executable ? (hashes.nar ? { nar: hashes.nar } : {}) : hashes;
  }
  // Loaded only when asked for: the decompressors are not needed by plain downloads.
  const { unpackArchive } = await import('../unpack/index.js');
  await unpackArchive(download, ctx.out, { stripOneTopLevel: true });
  return {};
};
