import { chmod, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { detectFormat, readHead, type ArchiveFormat } from './detect.js';
import { tarBytes } from './decompress.js';
import { UnsupportedArchiveError, errnoCode } from './errors.js';
import { chooseOutput } from './strip.js';
import { readTar } from './tar.js';
import { SafeTree } from './tree.js';
import { readZip } from './zip.js';

export interface UnpackOptions {
  /** Strip the single top-level directory as nixpkgs' fetchzip does (default true). */
  stripOneTopLevel?: boolean;
  signal?: AbortSignal;
}

export interface UnpackResult {
  format: ArchiveFormat;
  /** Archive members extracted (directories, files and links; not metadata headers). */
  entries: number;
}

/**
 * Unpacks a tar (plain, gzip, xz or zstd) or zip archive into `dest`, which must not exist and
 * is created. The format comes from magic bytes. Members are written into a private temporary
 * directory beside `dest` under the rules of {@link SafeTree}, then the output is chosen
 * ({@link chooseOutput}) and renamed into place. Files get mode 0644 or 0755 (the owner-execute
 * bit is kept); ownership, times and xattrs are ignored. On any error nothing is left: neither
 * the temporary directory nor `dest`.
 */
export async function unpackArchive(archivePath: string, dest: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const detected = detectFormat(await readHead(archivePath));
  if (detected === 'tar.bz2') throw new UnsupportedArchiveError(`unsupported archive format: bzip2 ('${archivePath}'); recompress it as gzip, xz or zstd`);
  if (detected === 'unknown') throw new UnsupportedArchiveError(`unsupported archive format: '${archivePath}' is not a tar (plain, gzip, xz or zstd) or zip archive`);
  const format = detected;

  const out = resolve(dest);
  // Claiming dest first makes "must not exist" race-free; the final rename replaces the empty claim.
  try {
    await mkdir(out, 0o755);
  } catch (e) {
    if (errnoCode(e) === 'EEXIST') throw new Error(`cannot unpack into '${dest}': it already exists`);
    throw e;
  }
  let work: string | undefined;
  try {
    work = await mkdtemp(join(dirname(out), `.${basename(out)}.unpack-`));
    const tree = new SafeTree(work);
    if (format === 'zip') await readZip(archivePath, tree, signal);
    else await readTar(tarBytes(archivePath, format, signal), tree, signal);
    signal?.throwIfAborted();
    const chosen = await chooseOutput(work, opts.stripOneTopLevel ?? true);
    await chmod(chosen.dir, 0o755);
    await rename(chosen.dir, out);
    // The output is in place: a leftover empty temp dir is no reason to fail.
    if (chosen.parts.length > 0) await rm(work, { recursive: true, force: true }).catch(() => undefined);
    return { format, entries: tree.entries };
  } catch (e) {
    await Promise.all([
      work === undefined ? undefined : rm(work, { recursive: true, force: true }).catch(() => undefined),
      rm(out, { recursive: true, force: true }).catch(() => undefined),
    ]);
    throw e;
  }
}
