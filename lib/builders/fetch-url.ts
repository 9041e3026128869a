import { chmodSync, existsSync } from 'node:fs';
import { chmod, copyFile, open, stat } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { FetchError, formatRetryNotice, openDownload, redactUrl, splitSecretCurlOpts, writeFullyAt, type FetchOptions } from '../fetch/index.js';
import { Hash } from '../hash/index.js';
import { GrowingFileHasher } from '../nar/index.js';
import type { BuildOutcome } from '../recipe/index.js';
import { FETCHER_IMPURE_ENV_VARS, makeRecipe, type Builder, type Recipe } from '../recipe/index.js';
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
const TLS_TROUBLE = /certificate|self[- ]signed|SSL|TLS|EPROTO/i;

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

/**
 * Streams `url` into `dest` and, unless `hashing` is undefined, hashes it in the same pass. When
 * the server announced the size, a worker thread reads the written prefix back (from the page
 * cache) into the flat sha256 and the NAR hash, so this thread only receives and writes (500 MB:
 * 1.19 s instead of 1.48 s); otherwise this thread hashes the flat sha256 and realise() the NAR.
 */
async function downloadHashed(url: string, dest: string, hashing: { executable: boolean } | undefined, opts: FetchOptions): Promise<Pick<BuildOutcome, 'flatSha256' | 'nar'>> {
  const fh = await open(dest, 'w', 0o644);
  let hasher: GrowingFileHasher | undefined;
  let flat: ReturnType<typeof createHash> | undefined;
  let pos = 0;
  const startHashing = (total: number | undefined) => {
    if (!hashing) return;
    hasher = total !== undefined ? new GrowingFileHasher(dest, total, hashing) : undefined;
    flat = total === undefined ? createHash('sha256') : undefined;
  };
  try {
    const dl = await openDownload(url, {
      ...opts,
      onRestart: async () => {
        await hasher?.abort();
        await fh.truncate(0);
        pos = 0;
        startHashing(dl.total);
      },
    });
    startHashing(dl.total);
    for await (const chunk of dl) {
      flat?.update(chunk);
      await writeFullyAt(fh, chunk, pos);
      pos += chunk.length;
      hasher?.advance(pos);
    }
    if (flat) return { flatSha256: new Hash('sha256', flat.digest()) };
    if (!hasher) return {};
    if (pos !== hasher.size) {
      // The announced size was wrong: realise() hashes the file itself.
      await hasher.abort();
      return {};
    }
    const done = await hasher.finish();
    return { flatSha256: done.flat, nar: done.nar };
  } catch (e) {
    await hasher?.abort();
    throw e;
  } finally {
    await fh.close();
  }
}

/**
 * A `file://` URL: mounted media on an air-gapped machine, as curl (and so Nix) reads them. The
 * copy is hashed by realise(); an archive to unpack is read where it is.
 */
async function copyLocal(url: string, dest: string | undefined): Promise<string> {
  const path = fileURLToPath(url);
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error(`${url}: not a regular file`);
    if (dest !== undefined) await copyFile(path, dest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${url}: no such file`);
    if (code === 'EACCES') throw new Error(`${url}: permission denied`);
    throw e;
  }
  return path;
}

export const fetchUrlBuilder: Builder = async (ctx) => {
  const { url, unpack, executable, curlOpts: stored, stripRoot } = ctx.recipe.args as { url: string; unpack: boolean; executable: boolean; curlOpts: string; stripRoot?: boolean };
  // The recipe's flags, then the credentials the caller gave for this build only.
  const curlOpts = [stored, ctx.secrets.curlOpts ?? ''].filter((o) => o !== '').join(' ');
  const shown = redactUrl(url);
  if (url.startsWith('file:')) {
    const local = await copyLocal(url, unpack ? undefined : ctx.out);
    if (!unpack) {
      if (executable) await chmod(ctx.out, 0o755);
      return {};
    }
    await unpackNamed(local, ctx.out, shown, stripRoot ?? true);
    return {};
  }
  const download = unpack ? join(ctx.tmp, 'download') : ctx.out;
  ctx.progress.start(url, shown);
  let hashes: Pick<BuildOutcome, 'flatSha256' | 'nar'>;
  try {
    // An archive to unpack is hashed as the tree it unpacks to, not as the download.
    hashes = await downloadHashed(url, download, unpack ? undefined : { executable }, {
      env: ctx.env,
      ...(curlOpts ? { curlOpts } : {}),
      ...(ctx.secrets.netrcFile !== undefined ? { netrcFile: ctx.secrets.netrcFile } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      onProgress: (received: number, total: number | undefined) => ctx.progress.update(url, received, total),
      onRetry: (n) => ctx.warn(formatRetryNotice(n)),
    });
  } catch (e) {
    if (e instanceof FetchError && TLS_TROUBLE.test(e.message)) {
      throw new Error(`${e.message} (for a self-signed server: trust its CA with NIX_SSL_CERT_FILE=ca.pem or --curl-opts '--cacert ca.pem', or skip verification with --curl-opts '-k')`, { cause: e });
    }
    throw e;
  } finally {
    ctx.progress.finish(url);
  }
  if (!unpack) {
    if (executable) chmodSync(ctx.out, 0o755);
    // A flat output's declared hash is the flat one; an --executable one is hashed as a NAR.
    return executable ? (hashes.nar ? { nar: hashes.nar } : {}) : hashes;
  }
  await unpackNamed(download, ctx.out, shown, stripRoot ?? true);
  return {};
};

/** Unpacks as fetchzip does; a refusal or a damaged archive names the URL it came from. */
async function unpackNamed(archive: string, out: string, shown: string, stripRoot: boolean): Promise<void> {
  // Loaded only when asked for: the decompressors are not needed by plain downloads.
  const { unpackArchive } = await import('../unpack/index.js');
  try {
    await unpackArchive(archive, out, { stripOneTopLevel: stripRoot });
  } catch (e) {
    throw new Error(`cannot unpack ${shown}: ${(e as Error).message}`, { cause: e });
  }
}
