import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { HashingStream } from '../hash/index.js';
import { OCI_CONFIG, OCI_MANIFEST, writeOciLayout, type OciBlob } from '../image/index.js';
import type { BaseArchive } from './base-image.js';
import type { NewLayerFile } from './archive.js';
import { compressStream, type Compressor } from './compress.js';

/**
 * `format: 'oci'`: the same image as an OCI layout directory (lib/image's writer): the config
 * bytes unchanged as the config blob, each layer as a blob compressed as asked (none → `tar`,
 * gz → `tar+gzip`, zstd → `tar+zstd`), index.json naming the tag. Base layers are read out
 * of the base archive; compressed blobs are made in a temporary file beside the layout first,
 * since a descriptor needs the digest before the blob is stored.
 */

const LAYER_TYPE: Record<Compressor, string> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gz: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

interface LayerSource { path: string; offset: number; size: number; diffId: string }

async function* noBytes(): AsyncGenerator<Buffer> {}
const rangeStream = (s: { path: string; offset: number; size: number }): AsyncIterable<Buffer> =>
  s.size === 0 ? noBytes() : createReadStream(s.path, { start: s.offset, end: s.offset + s.size - 1, highWaterMark: 1 << 20 });

export interface OciInput {
  base: BaseArchive | null;
  layer: NewLayerFile;
  config: Buffer;
  configDigest: string;
  tag: string;
  compressor: Compressor;
  /** Where compressed blobs are made first. */
  tmpDir: string;
}

export async function writeBuildOci(dir: string, input: OciInput, signal?: AbortSignal): Promise<void> {
  const sources: LayerSource[] = [
    ...(input.base?.layers.map((l) => ({ path: input.base!.path, offset: l.member.dataOffset, size: l.member.size, diffId: l.diffId })) ?? []),
    { path: input.layer.path, offset: 0, size: input.layer.size, diffId: input.layer.diffId },
  ];
  const temps: string[] = [];
  try {
    const layers: OciBlob[] = [];
    const made = new Map<string, OciBlob>();
    for (const s of sources) {
      signal?.throwIfAborted();
      const already = made.get(s.diffId);
      if (already) {
        layers.push(already);
        continue;
      }
      let blob: OciBlob;
      const compress = await compressStream(input.compressor);
      if (!compress) {
        blob = { digest: s.diffId, size: s.size, data: () => rangeStream(s) };
      } else {
        const temp = join(input.tmpDir, `.oci-blob-${randomBytes(6).toString('hex')}`);
        temps.push(temp);
        const hashing = new HashingStream('sha256');
        await pipeline(rangeStream(s), compress, hashing, createWriteStream(temp, { mode: 0o644 }));
        blob = { digest: `sha256:${hashing.digest().base16}`, size: hashing.bytes, data: () => createReadStream(temp, { highWaterMark: 1 << 20 }) };
      }
      made.set(s.diffId, blob);
      layers.push(blob);
    }
    const descriptor = (mediaType: string, b: { digest: string; size: number }) => ({ mediaType, digest: b.digest, size: b.size });
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: descriptor(OCI_CONFIG, { digest: input.configDigest, size: input.config.length }),
      layers: layers.map((l) => descriptor(LAYER_TYPE[input.compressor], l)),
    }));
    const configBlob: OciBlob = { digest: input.configDigest, size: input.config.length, data: input.config };
    await writeOciLayout(dir, { manifest: { mediaType: OCI_MANIFEST, bytes: manifest }, refName: input.tag, blobs: [configBlob, ...made.values()] });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  } finally {
    for (const t of temps) await rm(t, { force: true });
  }
}
