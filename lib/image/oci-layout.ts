import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { goMarshal, type GoJsonValue } from './canonical-json.js';
import { OCI_INDEX, OCI_MANIFEST } from './oci-convert.js';

/**
 * An OCI image layout directory (image-spec image-layout.md), written the way
 * `skopeo copy ... oci:DIR:TAG` writes a fresh one: `oci-layout`, `index.json` with one
 * descriptor carrying the `org.opencontainers.image.ref.name` annotation, and
 * `blobs/sha256/<hex>` holding every blob exactly as given (no recompression). Docker-typed
 * images must be converted first (toOciImage/toOciIndex, as skopeo does); the result then equals
 * skopeo's byte for byte. The content depends only on the inputs, so the directory hashes reproducibly.
 */

export const OCI_LAYOUT_FILE = '{"imageLayoutVersion": "1.0.0"}';
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** A blob to store: in memory, or opened as a stream when it is written. */
export interface OciBlob {
  digest: string;
  size: number;
  data: Buffer | (() => AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>);
}

export interface OciLayoutInput {
  /** The image's top manifest (an image manifest or an index), as fetched. */
  manifest: { mediaType: string; bytes: Buffer };
  /** The tag recorded in index.json; omitted means no annotation. */
  refName?: string;
  /** Every blob the manifest reaches: configs, layers, and child manifests of an index. */
  blobs: Iterable<OciBlob>;
  /** Store a Docker-typed top manifest as it is (the layout is then a blob store, not one skopeo or umoci can open by tag). */
  foreignMediaTypes?: boolean;
}

function hexOf(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new Error(`not a sha256 digest: ${digest}`);
  return m[1]!;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

async function writeBlob(dir: string, blob: OciBlob): Promise<void> {
  const final = join(dir, 'blobs', 'sha256', hexOf(blob.digest));
  if (await exists(final)) return;
  const temp = `${final}.partial`;
  const hash = createHash('sha256');
  let size = 0;
  const source = Buffer.isBuffer(blob.data) ? [blob.data] : await blob.data();
  try {
    await pipeline(
      async function* () {
        for await (const chunk of source) {
          hash.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(temp, { mode: 0o644 }),
    );
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== blob.digest || size !== blob.size) {
      throw new Error(`blob ${blob.digest} (${blob.size} bytes) arrived as ${got} (${size} bytes)`);
    }
    await rename(temp, final);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
}

interface Descriptor { digest: string; urls?: unknown }

// The blobs a manifest or index points at (non-distributable layers with URLs may be absent).
function children(bytes: Buffer): { manifests: Descriptor[]; blobs: Descriptor[] } {
  const m = JSON.parse(bytes.toString('utf8')) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
  const blobs = [...(m.config ? [m.config] : []), ...(m.layers ?? []).filter((l) => l.urls === undefined)];
  return { manifests: m.manifests ?? [], blobs };
}

async function checkComplete(dir: string, topDigest: string): Promise<void> {
  const pending = [topDigest];
  const seen = new Set<string>();
  while (pending.length) {
    const digest = pending.pop()!;
    if (seen.has(digest)) continue;
    seen.add(digest);
    const bytes = await readFile(join(dir, 'blobs', 'sha256', hexOf(digest))).catch(() => {
      throw new Error(`OCI layout is missing manifest ${digest}`);
    });
    const { manifests, blobs } = children(bytes);
    pending.push(...manifests.map((d) => d.digest));
    for (const b of blobs) {
      if (!(await exists(join(dir, 'blobs', 'sha256', hexOf(b.digest))))) throw new Error(`OCI layout is missing blob ${b.digest}`);
    }
  }
}

/** index.json as Go marshals image-spec's Index for a single tagged image. */
export function ociIndexJson(descriptor: { mediaType: string; digest: string; size: number }, refName?: string): Buffer {
  const entry: { [k: string]: GoJsonValue } = { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
  if (refName !== undefined && refName !== '') entry.annotations = new Map([[REF_NAME_ANNOTATION, refName]]);
  return goMarshal({ schemaVersion: 2, manifests: [entry] });
}

/**
 * Writes a fresh layout into `dir` (created if needed; it must not already hold an index.json)
 * and returns the top manifest's digest. Every blob's digest and size is checked as it is
 * written, and the layout must end up complete: every blob the manifest reaches is present.
 */
export async function writeOciLayout(dir: string, input: OciLayoutInput): Promise<{ digest: string }> {
  // skopeo and umoci only find OCI-typed descriptors by tag; convert Docker ones first (toOciImage).
  if (!input.foreignMediaTypes && input.manifest.mediaType !== OCI_MANIFEST && input.manifest.mediaType !== OCI_INDEX) {
    throw new Error(`an OCI layout needs an OCI manifest or index, got ${input.manifest.mediaType} (convert it with toOciImage/toOciIndex)`);
  }
  if (await exists(join(dir, 'index.json'))) throw new Error(`${dir} already holds an OCI layout`);
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const digest = `sha256:${createHash('sha256').update(input.manifest.bytes).digest('hex')}`;
  await writeBlob(dir, { digest, size: input.manifest.bytes.length, data: input.manifest.bytes });
  for (const blob of input.blobs) await writeBlob(dir, blob);
  await checkComplete(dir, digest);
  await writeFile(join(dir, 'oci-layout'), OCI_LAYOUT_FILE, { mode: 0o644 });
  const index = ociIndexJson({ mediaType: input.manifest.mediaType, digest, size: input.manifest.bytes.length }, input.refName);
  await writeFile(join(dir, 'index.json'), index, { mode: 0o644 });
  return { digest };
}
