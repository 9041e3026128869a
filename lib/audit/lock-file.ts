import stringify from 'json-stable-stringify';
import { printable } from '../text/index.js';

/**
 * `fetch-image.lock.json`: one entry per pin, so that an audit can later answer "is this still
 * exactly what we shipped?". Version 1 of the schema:
 *
 * ```json
 * { "lockVersion": 1,
 *   "images": [{ "imageName", "imageDigest", "indexDigest"?, "fromTag"?, "hash", "finalImageName",
 *                "finalImageTag", "os", "arch", "variant"?, "tlsVerify"?, "name"?, "storePath" }],
 *   "urls":   [{ "url", "hash", "unpack", "executable"?, "name", "storePath", "etag"?, "lastModified"?, "size"? }],
 *   "builds": [{ "spec", "specSha256", "recipePath", "storePath", "narHash" }] }
 * ```
 * Keys are written sorted, entries sorted by identity, two-space indented with a final newline,
 * so that re-locking the same pins gives no diff and a changed pin is a one-entry diff.
 */
export const LOCK_VERSION = 1;
export const DEFAULT_LOCK_FILE = 'fetch-image.lock.json';

export interface ImagePin {
  imageName: string;
  /** Digest of the platform's manifest (what pullImage pins). */
  imageDigest: string;
  /** Digest of the index the tag pointed at, when the image came from one. */
  indexDigest?: string;
  /** The tag that was resolved when the pin was made (absent for pins made from a digest). */
  fromTag?: string;
  /** SRI sha256 of the docker-archive (flat), as pullImage `hash`. */
  hash: string;
  finalImageName: string;
  finalImageTag: string;
  os: string;
  arch: string;
  variant?: string;
  tlsVerify?: boolean;
  /** Store path name when not the default. */
  name?: string;
  storePath: string;
}

export interface UrlPin {
  url: string;
  hash: string;
  unpack: boolean;
  /** As nix-prefetch-url --executable (hashed recursively). */
  executable?: boolean;
  name: string;
  storePath: string;
  /** What the server said when the pin was made: cheap hints of a change (HEAD), not proof. */
  etag?: string;
  lastModified?: string;
  size?: number;
}

export interface BuildPin {
  /** The spec file, relative to the lock file's directory. */
  spec: string;
  specSha256: string;
  recipePath: string;
  storePath: string;
  narHash: string;
}

export interface LockFile {
  lockVersion: typeof LOCK_VERSION;
  images: ImagePin[];
  urls: UrlPin[];
  builds: BuildPin[];
}

export class LockFileError extends Error {
  constructor(file: string, where: string, what: string) {
    // `where` is a key path and `what` may quote the file: both are the file's own text.
    super(`${file}: ${where ? `${printable(where)}: ` : ''}${printable(what, 400)}`);
    this.name = 'LockFileError';
  }
}

export function emptyLock(): LockFile {
  return { lockVersion: LOCK_VERSION, images: [], urls: [], builds: [] };
}

/** What makes two entries the same pin (a re-lock replaces the entry instead of adding one). */
export function imageIdentity(p: ImagePin): string {
  return [p.imageName, p.fromTag ?? p.imageDigest, p.os, p.arch, p.variant ?? '', p.finalImageName, p.finalImageTag, p.name ?? ''].join('\0');
}
export const urlIdentity = (p: UrlPin): string => [p.url, p.unpack ? 'unpack' : 'flat', p.name].join('\0');
export const buildIdentity = (p: BuildPin): string => p.spec;

function upsert<T>(list: T[], entry: T, identity: (t: T) => string): T[] {
  const id = identity(entry);
  return [...list.filter((e) => identity(e) !== id), entry].sort((a, b) => (identity(a) < identity(b) ? -1 : identity(a) > identity(b) ? 1 : 0));
}

/** The lock with `pin` added or replacing the entry of the same identity; entries stay sorted. */
export function withPin(lock: LockFile, pin: { image: ImagePin } | { url: UrlPin } | { build: BuildPin }): LockFile {
  if ('image' in pin) return { ...lock, images: upsert(lock.images, pin.image, imageIdentity) };
  if ('url' in pin) return { ...lock, urls: upsert(lock.urls, pin.url, urlIdentity) };
  return { ...lock, builds: upsert(lock.builds, pin.build, buildIdentity) };
}

export function serializeLock(lock: LockFile): string {
  const sorted: LockFile = {
    lockVersion: LOCK_VERSION,
    images: [...lock.images].sort(byIdentity(imageIdentity)),
    urls: [...lock.urls].sort(byIdentity(urlIdentity)),
    builds: [...lock.builds].sort(byIdentity(buildIdentity)),
  };
  return `${stringify(sorted, { space: 2 }) ?? '{}'}\n`;
}

function byIdentity<T>(identity: (t: T) => string): (a: T, b: T) => number {
  return (a, b) => (identity(a) < identity(b) ? -1 : identity(a) > identity(b) ? 1 : 0);
}

type FieldKind = 'string' | 'boolean' | 'digest' | 'sri' | 'storePath' | 'count';
type Schema = Record<string, { kind: FieldKind; optional?: boolean }>;

const IMAGE_SCHEMA: Schema = {
  imageName: { kind: 'string' }, imageDigest: { kind: 'digest' }, indexDigest: { kind: 'digest', optional: true },
  fromTag: { kind: 'string', optional: true }, hash: { kind: 'sri' }, finalImageName: { kind: 'string' },
  finalImageTag: { kind: 'string' }, os: { kind: 'string' }, arch: { kind: 'string' }, variant: { kind: 'string', optional: true },
  tlsVerify: { kind: 'boolean', optional: true }, name: { kind: 'string', optional: true }, storePath: { kind: 'storePath' },
};
const URL_SCHEMA: Schema = {
  url: { kind: 'string' }, hash: { kind: 'sri' }, unpack: { kind: 'boolean' }, executable: { kind: 'boolean', optional: true },
  name: { kind: 'string' }, storePath: { kind: 'storePath' },
  etag: { kind: 'string', optional: true }, lastModified: { kind: 'string', optional: true }, size: { kind: 'count', optional: true },
};
const BUILD_SCHEMA: Schema = {
  spec: { kind: 'string' }, specSha256: { kind: 'string' }, recipePath: { kind: 'storePath' }, storePath: { kind: 'storePath' }, narHash: { kind: 'sri' },
};

const CHECKS: Record<FieldKind, { ok: (v: unknown) => boolean; expected: string }> = {
  string: { ok: (v) => typeof v === 'string' && v !== '', expected: 'a non-empty string' },
  boolean: { ok: (v) => typeof v === 'boolean', expected: 'true or false' },
  digest: { ok: (v) => typeof v === 'string' && /^sha256:[0-9a-f]{64}$/.test(v), expected: 'sha256:<64 hex digits>' },
  sri: { ok: (v) => typeof v === 'string' && /^sha256-[A-Za-z0-9+/]{43}=$/.test(v), expected: 'an SRI sha256 hash (sha256-…=)' },
  count: { ok: (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0, expected: 'a non-negative integer' },
  storePath: { ok: (v) => typeof v === 'string' && /^\/.+\/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+$/.test(v), expected: 'a store path' },
};

function checkEntry<T>(file: string, where: string, value: unknown, schema: Schema): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new LockFileError(file, where, 'expected an object');
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!(key in schema)) throw new LockFileError(file, `${where}.${key}`, 'unknown key');
  }
  for (const [key, f] of Object.entries(schema)) {
    const v = o[key];
    if (v === undefined) {
      if (!f.optional) throw new LockFileError(file, `${where}.${key}`, 'missing');
      continue;
    }
    if (!CHECKS[f.kind].ok(v)) throw new LockFileError(file, `${where}.${key}`, `expected ${CHECKS[f.kind].expected}`);
  }
  return o as T;
}

/** Parses and validates a lock file's text; every error names the file and the key path. */
export function parseLock(text: string, file: string): LockFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new LockFileError(file, '', `not JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new LockFileError(file, '', 'expected an object');
  const o = parsed as Record<string, unknown>;
  if (o.lockVersion !== LOCK_VERSION) {
    throw new LockFileError(file, 'lockVersion', `expected ${LOCK_VERSION}${o.lockVersion === undefined ? '' : `, got ${JSON.stringify(o.lockVersion)}`} (this fetch-image reads lock version ${LOCK_VERSION})`);
  }
  for (const key of Object.keys(o)) {
    if (!['lockVersion', 'images', 'urls', 'builds'].includes(key)) throw new LockFileError(file, key, 'unknown key');
  }
  const list = <T>(key: 'images' | 'urls' | 'builds', schema: Schema): T[] => {
    const v = o[key] ?? [];
    if (!Array.isArray(v)) throw new LockFileError(file, key, 'expected an array');
    return v.map((e, i) => checkEntry<T>(file, `${key}[${i}]`, e, schema));
  };
  return { lockVersion: LOCK_VERSION, images: list<ImagePin>('images', IMAGE_SCHEMA), urls: list<UrlPin>('urls', URL_SCHEMA), builds: list<BuildPin>('builds', BUILD_SCHEMA) };
}
