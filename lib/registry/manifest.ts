/**
 * Manifest media types, parsing and verification. Pure: the bytes come from the client; we keep
 * them exactly as received because the manifest digest and the config bytes are part of what
 * gets pinned and archived.
 */
import { createHash } from 'node:crypto';
import { validateDigest } from './reference.js';
import { printable } from '../text/index.js';

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

/**
 * Accept header for manifest requests (SPEC §6). Schema 1 is listed so that an old image
 * answers with something we can recognise and refuse clearly instead of a 404.
 */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerList,
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerSchema1Signed,
].join(', ');

/** containers/image's limits: manifests and configs beyond this are refused unread. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

const INDEX_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList]);
const IMAGE_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest]);
const SCHEMA1_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.dockerSchema1, MEDIA_TYPES.dockerSchema1Signed]);

export function isIndexMediaType(t: string): boolean {
  return INDEX_TYPES.has(t);
}
export function isImageManifestMediaType(t: string): boolean {
  return IMAGE_TYPES.has(t);
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string; 'os.version'?: string; 'os.features'?: string[] };
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  schemaVersion: 2;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  schemaVersion: 2;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export type Manifest = ImageManifest | ImageIndex;

/** `sha256:<hex>` of exactly these bytes (or the algorithm of `like`, if given). */
export function digestOf(bytes: Uint8Array, like = 'sha256:'): string {
  const algo = like.slice(0, like.indexOf(':'));
  return `${algo}:${createHash(algo).update(bytes).digest('hex')}`;
}

/**
 * Throws unless `bytes` hash to `digest` (and have `size` bytes, when a parent descriptor gave
 * one). `what` names the object and where it came from, for the one-line error.
 */
export function verifyBytes(bytes: Uint8Array, expect: { digest?: string | undefined; size?: number | undefined }, what: string): string {
  if (expect.size !== undefined && bytes.length !== expect.size) {
    throw new Error(`${what}: size mismatch: expected ${expect.size} bytes, got ${bytes.length}`);
  }
  const got = digestOf(bytes, expect.digest ?? 'sha256:');
  if (expect.digest !== undefined && got !== expect.digest) {
    throw new Error(`${what}: digest mismatch: expected ${expect.digest}, got ${got}`);
  }
  return got;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringMap(v: unknown, where: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new Error(`${where}: annotations must be an object`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw new Error(`${where}: annotation '${printable(k)}' must be a string`);
    out[k] = x;
  }
  return out;
}

function parseDescriptor(v: unknown, where: string): Descriptor {
  if (!isObject(v)) throw new Error(`${where}: not an object`);
  const { mediaType, digest, size, urls, annotations, platform } = v;
  if (typeof mediaType !== 'string' || mediaType === '') throw new Error(`${where}: missing mediaType`);
  if (typeof digest !== 'string') throw new Error(`${where}: missing digest`);
  validateDigest(digest, `${where}.digest ${digest}`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new Error(`${where}: invalid size ${JSON.stringify(size)}`);
  const d: Descriptor = { mediaType, digest, size };
  if (urls !== undefined && urls !== null) {
    if (!Array.isArray(urls) || urls.some((u) => typeof u !== 'string')) throw new Error(`${where}: urls must be strings`);
    d.urls = urls as string[];
  }
  const ann = stringMap(annotations, where);
  if (ann) d.annotations = ann;
  if (platform !== undefined && platform !== null) {
    if (!isObject(platform) || typeof platform.os !== 'string' || typeof platform.architecture !== 'string') {
      throw new Error(`${where}: platform needs string os and architecture`);
    }
    const p: NonNullable<Descriptor['platform']> = { os: platform.os, architecture: platform.architecture };
    if (typeof platform.variant === 'string') p.variant = platform.variant;
    if (typeof platform['os.version'] === 'string') p['os.version'] = platform['os.version'];
    if (Array.isArray(platform['os.features'])) p['os.features'] = platform['os.features'].filter((x): x is string => typeof x === 'string');
    d.platform = p;
  }
  return d;
}

/** Thrown for schema 1 manifests: we cannot produce what skopeo would from them. */
export class Schema1Error extends Error {
  constructor(what: string) {
    super(`schema 1 manifests are not supported: ${what} (Docker deprecated them; push the image again with a current client)`);
    this.name = 'Schema1Error';
  }
}

/**
 * Decides the media type the way containers/image does: the body's own `mediaType` field,
 * else the type its parent descriptor promised, else the Content-Type header, else its shape.
 */
function mediaTypeOf(doc: Record<string, unknown>, hints: { descriptorType?: string | undefined; contentType?: string | undefined }): string | undefined {
  if (typeof doc.mediaType === 'string' && doc.mediaType !== '') return doc.mediaType;
  if (doc.schemaVersion === 1) return MEDIA_TYPES.dockerSchema1;
  const known = (t: string | undefined): string | undefined => {
    const base = t?.split(';')[0]?.trim().toLowerCase();
    return base && (INDEX_TYPES.has(base) || IMAGE_TYPES.has(base) || SCHEMA1_TYPES.has(base)) ? base : undefined;
  };
  const hinted = known(hints.descriptorType) ?? known(hints.contentType);
  if (hinted) return hinted;
  // OCI allows omitting mediaType; tell index from manifest by their fields.
  if (Array.isArray(doc.manifests)) return MEDIA_TYPES.ociIndex;
  if (isObject(doc.config) && Array.isArray(doc.layers)) return MEDIA_TYPES.ociManifest;
  return undefined;
}

/**
 * Parses manifest bytes (already verified) into an image manifest or an index. `what` names
 * the manifest and its source for errors. Schema 1 → Schema1Error.
 */
export function parseManifest(bytes: Uint8Array, what: string, hints: { descriptorType?: string | undefined; contentType?: string | undefined } = {}): Manifest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new Error(`${what}: not valid JSON (${printable((err as Error).message)})`);
  }
  if (!isObject(doc)) throw new Error(`${what}: not a JSON object`);
  const mediaType = mediaTypeOf(doc, hints);
  if (mediaType !== undefined && SCHEMA1_TYPES.has(mediaType)) throw new Schema1Error(what);
  if (mediaType === undefined) throw new Error(`${what}: cannot tell what kind of manifest this is (no mediaType, unknown shape)`);
  if (doc.schemaVersion !== 2) throw new Error(`${what}: unsupported schemaVersion ${JSON.stringify(doc.schemaVersion)}`);
  const annotations = stringMap(doc.annotations, what);
  if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw new Error(`${what}: index without a manifests array`);
    const manifests = doc.manifests.map((m, i) => parseDescriptor(m, `${what}: manifests[${i}]`));
    return { kind: 'index', mediaType, schemaVersion: 2, manifests, ...(annotations ? { annotations } : {}) };
  }
  if (IMAGE_TYPES.has(mediaType)) {
    const config = parseDescriptor(doc.config, `${what}: config`);
    if (!Array.isArray(doc.layers)) throw new Error(`${what}: manifest without a layers array`);
    const layers = doc.layers.map((l, i) => parseDescriptor(l, `${what}: layers[${i}]`));
    return { kind: 'manifest', mediaType, schemaVersion: 2, config, layers, ...(annotations ? { annotations } : {}) };
  }
  throw new Error(`${what}: unsupported manifest media type '${printable(mediaType)}'`);
}
