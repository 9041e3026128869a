import { createHash } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { dockerArchiveLayout, decompressLayer, type ArchivePiece, type RepoTag } from '../image/index.js';
import { GrowingFileHasher } from '../nar/index.js';
import type { BuildContext, BuildOutcome } from '../recipe/index.js';
import { writeFullyAt } from '../fetch/index.js';
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
  limit: <T>(job: () => Promise<T>) => Promise<T>,
): Promise<Map<string, LayerSource> | undefined> {
  const sources = new Map<string, LayerSource>();
  const planned = await Promise.all(distinctLayers(layers, diffIds).map(async ({ desc, diffId }): Promise<[string, LayerSource | undefined]> => {
    if (cache.has(diffId)) return [diffId, await cachedLayerSource(cache, diffId)];
    const range = index.lookup(diffId);
    if (range) return [diffId, { kind: 'local', file: range.file, offset: range.offset, size: range.size, what: `layer ${diffId} in ${range.path}`, forget: () => index.forget(diffId) }];
    if (UNCOMPRESSED_MEDIA.has(desc.mediaType)) return [diffId, { kind: 'registry', size: desc.size }];
    if (!GZIP_MEDIA.test(desc.mediaType)) return [diffId, undefined];
    // ISIZE: the uncompressed size modulo 2^32. Layers of 4 GiB and more, and multi-member gzip,
    // predict wrong; the download notices and the caller falls back.
    const tail = await limit(() => client.blobTail(desc, 4));
    return [diffId, tail ? { kind: 'registry', size: tail.readUInt32LE(0) } : undefined];
  }));
  for (const [diffId, source] of planned) {
    if (!source) return undefined;
    sources.set(diffId, source);
  }
  return sources;
}

/**
 * Each diff_id once, with the first layer descriptor that has it: a manifest may list one layer
 * many times (20,000 times made 20,003 range requests), and its bytes are needed once.
 */
export function distinctLayers(layers: readonly Descriptor[], diffIds: readonly string[]): { desc: Descriptor; diffId: string }[] {
  const seen = new Map<string, Descriptor>();
  layers.forEach((desc, i) => { if (!seen.has(diffIds[i]!)) seen.set(diffIds[i]!, desc); });
  return [...seen].map(([diffId, desc]) => ({ desc, diffId }));
}

/** An uncompressed layer in the blob cache, as a source (dropped from the cache if found damaged). */
export async function cachedLayerSource(cache: BlobCache, diffId: string): Promise<LayerSource> {
  const file = cache.path(diffId);
  const { size } = await stat(file);
  return { kind: 'local', file, offset: 0, size, what: `cached layer ${diffId}`, forget: () => cache.invalidate(diffId) };
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
  const layerPieces = layout.pieces.filter((p): p is LayerPiece => p.kind === 'layer');
  const descOf = new Map(diffIds.map((d, i) => [d, layers[i]!]));
  const sourceOf = (p: LayerPiece) => sources.get(p.diffId)!;
  // Every layer's diff_id is checked by the hashing workers, in the same read as the archive's
  // hashes: this thread is busy with the network and zlib, or only copies (a layer the store has).
  const fh = await open(ctx.out, 'w', 0o644);
  const hasher = new GrowingFileHasher(ctx.out, layout.size, { ranges: layerPieces.map((p) => ({ offset: p.offset, size: p.size })) });
  const prefix = new FinishedPrefix();
  // After one layer fails the others stop at their next chunk (their error is that first one).
  let failure: unknown;
  const written = (start: number, length: number) => {
    if (failure !== undefined) throw failure;
    hasher.advance(prefix.mark(start, start + length));
  };
  const fetchInto = (p: LayerPiece, onWritten: typeof written, verify: boolean) =>
    fetchLayer(ctx, client, fh, descOf.get(p.diffId)!, p.diffId, p.offset, p.size, onWritten, verify);
  /** Drops the store's damaged copies and fetches those layers into place instead. */
  const refetch = async (damaged: ReadonlyArray<{ piece: LayerPiece; why: string }>) => {
    for (const { piece, why } of damaged) {
      const source = sourceOf(piece) as LocalSource;
      source.forget();
      ctx.log(`${source.what} is damaged (${why}): dropped, fetching it again`);
      await fetchInto(piece, () => undefined, true);
    }
  };
  try {
    for (const piece of layout.pieces) {
      if (piece.kind !== 'bytes') continue;
      await writeFullyAt(fh, piece.bytes, piece.offset);
      written(piece.offset, piece.bytes.length);
    }
    const truncated: Array<{ piece: LayerPiece; why: string }> = [];
    await Promise.allSettled(layerPieces.map((piece) => limit(async () => {
      if (failure !== undefined) return;
      const source = sourceOf(piece);
      if (source.kind === 'registry') return fetchInto(piece, written, false);
      const why = await copyLocal(fh, source, piece.offset, written);
      if (why !== undefined) truncated.push({ piece, why });
    }).catch((e: unknown) => {
      failure ??= e;
    })));
    if (failure !== undefined) throw failure;
    if (truncated.length) {
      // The archive has a hole, so its hashes will never finish: realise() hashes the file itself.
      await hasher.abort();
      await refetch(truncated);
      await fh.close();
      return { ranges: rangesOf(layerPieces) };
    }
    // Flushing to disk while the workers catch up makes the store's own fsync nearly free.
    const [{ flat, nar, rangeDigests }] = await Promise.all([hasher.finish(), fh.datasync()]);
    const damaged: Array<{ piece: LayerPiece; why: string }> = [];
    layerPieces.forEach((piece, i) => {
      const got = rangeDigests[i]!;
      if (got === piece.diffId) return;
      if (sourceOf(piece).kind === 'local') damaged.push({ piece, why: `content ${got}` });
      else throw new Error(`layer ${descOf.get(piece.diffId)!.digest}: uncompressed content has digest ${got}, but the image config's diff_id is ${piece.diffId}`);
    });
    if (damaged.length) {
      // The hashes were of the damaged bytes: realise() hashes the repaired file itself.
      await refetch(damaged);
      await fh.close();
      return { ranges: rangesOf(layerPieces) };
    }
    await fh.close();
    return { flatSha256: flat, nar, ranges: rangesOf(layerPieces) };
  } catch (e) {
    await hasher.abort();
    await fh.close().catch(() => undefined);
    throw e;
  }
}

type LayerPiece = Extract<ArchivePiece, { kind: 'layer' }>;
type LocalSource = Extract<LayerSource, { kind: 'local' }>;

function rangesOf(pieces: readonly LayerPiece[]): Map<string, { offset: number; size: number }> {
  return new Map(pieces.map((p) => [p.diffId, { offset: p.offset, size: p.size }]));
}

/**
 * Copies a range the store already has into place through one reused buffer (its digest is
 * checked by the hashing workers). Returns why it could not, if the file ended early.
 */
async function copyLocal(fh: FileHandle, source: LocalSource, at: number, written: (start: number, length: number) => void): Promise<string | undefined> {
  const buf = Buffer.allocUnsafeSlow(Math.min(CHUNK, source.size));
  const src = await open(source.file, 'r');
  try {
    for (let done = 0; done < source.size;) {
      const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, source.size - done), source.offset + done);
      if (bytesRead === 0) return `truncated at ${done} of ${source.size} bytes`;
      const chunk = buf.subarray(0, bytesRead);
      await writeFullyAt(fh, chunk, at + done);
      written(at + done, bytesRead);
      done += bytesRead;
    }
  } finally {
    await src.close();
  }
  return undefined;
}

/** Downloads, inflates and writes one layer into place, checking its size (and its diff_id if `verify`). */
async function fetchLayer(
  ctx: BuildContext, client: RegistryClient, fh: FileHandle, desc: Descriptor, diffId: string, at: number, size: number,
  written: (start: number, length: number) => void, verify: boolean,
): Promise<void> {
  ctx.progress.start(desc.digest, `layer ${desc.digest.slice(7, 19)}`, desc.size);
  try {
    const blob = await client.openBlob(
      { digest: desc.digest, size: desc.size, ...(desc.urls ? { urls: desc.urls } : {}) },
      { onProgress: (got, total) => ctx.progress.update(desc.digest, got, total ?? desc.size) },
    );
    const hash = verify ? createHash('sha256') : undefined;
    let n = 0;
    for await (const chunk of decompressLayer(blob)) {
      if (n + chunk.length > size) throw new SizePredictionMiss(`layer ${desc.digest} is larger than the ${size} bytes planned for it`);
      hash?.update(chunk);
      await writeFullyAt(fh, chunk, at + n);
      written(at + n, chunk.length);
      n += chunk.length;
    }
    if (n !== size) throw new SizePredictionMiss(`layer ${desc.digest} is ${n} bytes uncompressed, not the ${size} planned for it`);
    if (!hash) return; // checked by whoever hashes the archive
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== diffId) throw new Error(`layer ${desc.digest}: uncompressed content has digest ${got}, but the image config's diff_id is ${diffId}`);
  } finally {
    ctx.progress.finish(desc.digest);
  }
}
