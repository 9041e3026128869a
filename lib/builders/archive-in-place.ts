import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { dockerArchiveLayout, decompressLayer, type RepoTag } from '../image/index.js';
import { GrowingFileHasher } from '../nar/index.js';
import type { BuildContext, BuildOutcome } from '../recipe/index.js';
import type { Descriptor, RegistryClient } from '../registry/index.js';
import type { BlobCache, ContentIndex } from '../store/index.js';

/**
 * The docker-archive written in place. When every layer's uncompressed size is known before its
 * bytes arrive — from a copy the store already has, or from the gzip trailer fetched with a range
 * request — the archive's layout is fixed up front. Layers are then downloaded, inflated and
 * written straight into their place, in parallel, with no spooled copy and no second pass, while
 * a worker thread hashes the finished prefix of the file. A size that turns out wrong is a
 * SizePredictionMiss: the caller writes the archive the spooling way instead.
 */

/** Where a layer's uncompressed bytes come from. */
export type LayerSource =
  | { kind: 'local'; file: string; offset: number; size: number; what: string; forget(): void }
  | { kind: 'registry'; size: number };

export class SizePredictionMiss extends Error {}

const CHUNK = 1 << 20;
const GZIP_MEDIA = /gzip/;
const UNCOMPRESSED_MEDIA = new Set(['application/vnd.docker.image.rootfs.diff.tar', 'application/vnd.oci.image.layer.v1.tar']);

/**
 * A source with a known size for each distinct diff_id, or undefined when some layer's size
 * cannot be known before downloading it (zstd, a server without range requests).
 */
export async function planLayerSources(
  client: RegistryClient, cache: BlobCache, index: ContentIndex, layers: readonly Descriptor[], diffIds: readonly string[],
): Promise<Map<string, LayerSource> | undefined> {
  const sources = new Map<string, LayerSource>();
  const planned = await Promise.all(layers.map(async (desc, i): Promise<[string, LayerSource | undefined]> => {
    const diffId = diffIds[i]!;
    if (cache.has(diffId)) {
      const file = cache.path(diffId);
      const { size } = await open(file, 'r').then(async (fh) => fh.stat().finally(() => fh.close()));
      return [diffId, { kind: 'local', file, offset: 0, size, what: `cached layer ${diffId}`, forget: () => cache.invalidate(diffId) }];
    }
    const range = index.lookup(diffId);
    if (range) return [diffId, { kind: 'local', file: range.file, offset: range.offset, size: range.size, what: `layer ${diffId} in ${range.path}`, forget: () => index.forget(diffId) }];
    if (UNCOMPRESSED_MEDIA.has(desc.mediaType)) return [diffId, { kind: 'registry', size: desc.size }];
    if (!GZIP_MEDIA.test(desc.mediaType)) return [diffId, undefined];
    // ISIZE: the uncompressed size modulo 2^32. Layers of 4 GiB and more, and multi-member gzip,
    // predict wrong; the download notices and the caller falls back.
    const tail = await client.blobTail(desc, 4);
    return [diffId, tail ? { kind: 'registry', size: tail.readUInt32LE(0) } : undefined];
  }));
  for (const [diffId, source] of planned) {
    if (!source) return undefined;
    sources.set(diffId, source);
  }
  return sources;
}

/** Tracks which bytes of the file are written, and how long the gap-free prefix is. */
class FinishedPrefix {
  end = 0;
  private pending: Array<[number, number]> = [];

  mark(start: number, end: number): number {
    const joined = this.pending.find((r) => r[1] === start);
    if (start <= this.end) this.end = Math.max(this.end, end);
    else if (joined) joined[1] = end;
    else this.pending.push([start, end]);
    for (let moved = true; moved;) {
      moved = false;
      for (let i = 0; i < this.pending.length; i++) {
        const r = this.pending[i]!;
        if (r[0] <= this.end) {
          this.end = Math.max(this.end, r[1]);
          this.pending.splice(i, 1);
          moved = true;
          break;
        }
      }
    }
    return this.end;
  }
}

async function writeAt(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let off = 0; off < bytes.length;) {
    const { bytesWritten } = await fh.write(bytes, off, bytes.length - off, position + off);
    off += bytesWritten;
  }
}

export interface InPlaceInput {
  ctx: BuildContext;
  client: RegistryClient;
  config: Buffer;
  layers: readonly Descriptor[];
  diffIds: readonly string[];
  repoTags: readonly RepoTag[];
  sources: Map<string, LayerSource>;
  limit: <T>(job: () => Promise<T>) => Promise<T>;
}

/**
 * Writes the archive into ctx.out from planned sources. Returns its hashes (when nothing had to
 * be written twice) and where each layer sits in it. Throws SizePredictionMiss when a layer's
 * real size differs from the plan; any other error is the pull's failure.
 */
export async function writeArchiveInPlace(input: InPlaceInput): Promise<Pick<BuildOutcome, 'flatSha256' | 'nar'> & { ranges: Map<string, { offset: number; size: number }> }> {
  const { ctx, client, config, layers, diffIds, repoTags, sources, limit } = input;
  const layout = dockerArchiveLayout(config, diffIds.map((diffId) => ({ diffId, size: sources.get(diffId)!.size })), repoTags);
  const descOf = new Map(diffIds.map((d, i) => [d, layers[i]!]));
  const fh = await open(ctx.out, 'w', 0o644);
  const hasher = new GrowingFileHasher(ctx.out, layout.size);
  const prefix = new FinishedPrefix();
  // After one layer fails the others stop at their next chunk (their error is that first one).
  let failure: unknown;
  const written = (start: number, length: number) => {
    if (failure !== undefined) throw failure;
    hasher.advance(prefix.mark(start, start + length));
  };
  let rewritten = false;
  try {
    for (const piece of layout.pieces) {
      if (piece.kind !== 'bytes') continue;
      await writeAt(fh, piece.bytes, piece.offset);
      written(piece.offset, piece.bytes.length);
    }
    const ranges = new Map<string, { offset: number; size: number }>();
    await Promise.allSettled(layout.pieces.map((piece) => piece.kind === 'layer' && limit(async () => {
      if (failure !== undefined) return;
      const source = sources.get(piece.diffId)!;
      const desc = descOf.get(piece.diffId)!;
      ranges.set(piece.diffId, { offset: piece.offset, size: piece.size });
      if (source.kind === 'local') {
        const got = await copyLocal(fh, source, piece.offset, written);
        if (got === piece.diffId) return;
        source.forget();
        ctx.log(`${source.what} is damaged (content ${got}): dropped, fetching it again`);
        rewritten = true;
      }
      await fetchLayer(ctx, client, fh, desc, piece.diffId, piece.offset, piece.size, written);
    }).catch((e: unknown) => {
      failure ??= e;
    })));
    if (failure !== undefined) throw failure;
    await fh.close();
    if (rewritten) {
      await hasher.abort();
      return { ranges }; // bytes were hashed before being replaced: realise() hashes the file itself
    }
    const { flat, nar } = await hasher.finish();
    return { flatSha256: flat, nar, ranges };
  } catch (e) {
    await hasher.abort();
    await fh.close().catch(() => undefined);
    throw e;
  }
}

/** Copies a range the store already has into place, returning the digest of what it copied. */
async function copyLocal(fh: FileHandle, source: Extract<LayerSource, { kind: 'local' }>, at: number, written: (start: number, length: number) => void): Promise<string> {
  const hash = createHash('sha256');
  const src = await open(source.file, 'r');
  try {
    for (let done = 0; done < source.size;) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, source.size - done));
      const { bytesRead } = await src.read(buf, 0, buf.length, source.offset + done);
      if (bytesRead === 0) return `(truncated at ${done} of ${source.size} bytes)`;
      const chunk = buf.subarray(0, bytesRead);
      hash.update(chunk);
      await writeAt(fh, chunk, at + done);
      written(at + done, bytesRead);
      done += bytesRead;
    }
  } finally {
    await src.close();
  }
  return `sha256:${hash.digest('hex')}`;
}

/** Downloads, inflates and writes one layer into place, checking its size and diff_id. */
async function fetchLayer(
  ctx: BuildContext, client: RegistryClient, fh: FileHandle, desc: Descriptor, diffId: string, at: number, size: number,
  written: (start: number, length: number) => void,
): Promise<void> {
  ctx.progress.start(desc.digest, `layer ${desc.digest.slice(7, 19)}`, desc.size);
  try {
    const blob = await client.openBlob(
      { digest: desc.digest, size: desc.size, ...(desc.urls ? { urls: desc.urls } : {}) },
      { onProgress: (got, total) => ctx.progress.update(desc.digest, got, total ?? desc.size) },
    );
    const hash = createHash('sha256');
    let n = 0;
    for await (const chunk of decompressLayer(blob)) {
      if (n + chunk.length > size) throw new SizePredictionMiss(`layer ${desc.digest} is larger than the ${size} bytes its gzip trailer gave`);
      hash.update(chunk);
      await writeAt(fh, chunk, at + n);
      written(at + n, chunk.length);
      n += chunk.length;
    }
    if (n !== size) throw new SizePredictionMiss(`layer ${desc.digest} is ${n} bytes uncompressed, not the ${size} its gzip trailer gave`);
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== diffId) throw new Error(`layer ${desc.digest}: uncompressed content has digest ${got}, but the image config's diff_id is ${diffId}`);
  } finally {
    ctx.progress.finish(desc.digest);
  }
}
