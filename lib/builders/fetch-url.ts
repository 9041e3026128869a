import { chmodSync } from 'node:fs';
import { chmod, copyFile, open, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { FetchError, formatRetryNotice, openDownload, redactUrl, writeFullyAt, type FetchOptions } from '../fetch/index.js';
import { Hash } from '../hash/index.js';
import { GrowingFileHasher } from '../nar/index.js';
import type { BuildOutcome } from '../recipe/index.js';
import type { Builder } from '../recipe/index.js';

const TLS_TROUBLE = /certificate|self[- ]signed|SSL|TLS|EPROTO/i;

export { defaultUrlName, fetchUrlRecipe, outputModeOf } from './fetch-url-recipe.js';
export type { FetchUrlSpec } from './fetch-url-recipe.js';

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
