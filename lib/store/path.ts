// Pure store-path arithmetic (SPEC.md §3), identical to Nix's makeStorePath and friends.
import { createHash } from 'node:crypto';
import { Hash, encodeNix32, type HashAlgo } from '../hash/index.js';
import { printable } from '../text/index.js';

export const DEFAULT_STORE_DIR = '/nix/store';
export const HASH_PART_LENGTH = 32;

export type ContentMethod = 'flat' | 'recursive';

/** Folds a digest into `size` bytes by XOR, as Nix's compressHash does. */
export function compressHash(digest: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  digest.forEach((b, i) => (out[i % size] ^= b));
  return out;
}

const NAME_RE = /^[A-Za-z0-9+\-._?=]+$/;

/** Why `name` cannot be a store path name, or undefined if it can. */
export function invalidStoreNameReason(name: string): string | undefined {
  if (name.length === 0) return 'it is empty';
  if (name.length > 211) return `it is ${name.length} characters long (at most 211)`;
  if (name.startsWith('.')) return "it starts with '.'";
  if (!NAME_RE.test(name)) {
    const bad = [...name].find((c) => !NAME_RE.test(c));
    return `it contains '${printable(bad ?? '')}' (allowed: letters, digits and + - . _ ? =)`;
  }
  return undefined;
}

export function checkStoreName(name: string): string {
  const why = invalidStoreNameReason(name);
  if (why) throw new Error(`invalid store path name '${name}': ${why}`);
  return name;
}

/** Turns any string into a valid name the way nixpkgs does for images: bad characters become '-'. */
export function sanitizeStoreName(name: string): string {
  const s = name.replace(/[^A-Za-z0-9+\-._?=]/g, '-').replace(/^\.+/, '');
  return (s || 'unnamed').slice(0, 211);
}

export function makeStorePath(type: string, hash: Hash, name: string, storeDir = DEFAULT_STORE_DIR): string {
  checkStoreName(name);
  const s = `${type}:sha256:${hash.base16}:${storeDir}:${name}`;
  const digest = createHash('sha256').update(s).digest();
  return `${storeDir}/${encodeNix32(compressHash(digest, 20))}-${name}`;
}

function refsSuffix(references: readonly string[], self: boolean): string {
  return [...references].sort().map((r) => `:${r}`).join('') + (self ? ':self' : '');
}

/**
 * Path of a fixed-output (content-addressed) object. Recursive sha256 is the "source" kind and
 * may have references; anything else goes through the "fixed:out:" indirection and may not.
 */
export function makeFixedOutputPath(
  method: ContentMethod,
  hash: Hash,
  name: string,
  opts: { references?: readonly string[]; self?: boolean; storeDir?: string } = {},
): string {
  const refs = opts.references ?? [];
  const storeDir = opts.storeDir ?? DEFAULT_STORE_DIR;
  if (method === 'recursive' && hash.algo === 'sha256') {
    return makeStorePath('source' + refsSuffix(refs, opts.self ?? false), hash, name, storeDir);
  }
  if (refs.length || opts.self) throw new Error(`a ${method} ${hash.algo} fixed-output path cannot have references`);
  const inner = Hash.of('sha256', `fixed:out:${method === 'recursive' ? 'r:' : ''}${hash.algo}:${hash.base16}:`);
  return makeStorePath('output:out', inner, name, storeDir);
}

/** Path of a text object (recipes), addressed by the sha256 of its contents. */
export function makeTextPath(name: string, contents: string | Uint8Array, references: readonly string[] = [], storeDir = DEFAULT_STORE_DIR): string {
  return makeStorePath('text' + refsSuffix(references, false), Hash.of('sha256', contents), name, storeDir);
}

/** The `ca` field Nix records for content-addressed paths. */
export function contentAddress(method: ContentMethod | 'text', hash: Hash): string {
  if (method === 'text') return `text:${hash.prefixed('nix32')}`;
  return `fixed:${method === 'recursive' ? 'r:' : ''}${hash.prefixed('nix32')}`;
}

export interface ParsedStorePath {
  hashPart: string;
  name: string;
  /** `<hashPart>-<name>` */
  baseName: string;
}

const HASH_PART_RE = /^[0-9a-df-np-sv-z]{32}$/;

/** Splits a store path (or its base name) into hash part and name, validating both. */
export function parseStorePath(path: string, storeDir = DEFAULT_STORE_DIR): ParsedStorePath {
  let base = path;
  if (path.includes('/')) {
    if (!path.startsWith(storeDir + '/')) throw new Error(`path '${path}' is not in the store ${storeDir}`);
    base = path.slice(storeDir.length + 1);
    if (base.includes('/')) base = base.slice(0, base.indexOf('/'));
  }
  const hashPart = base.slice(0, HASH_PART_LENGTH);
  if (!HASH_PART_RE.test(hashPart) || base[HASH_PART_LENGTH] !== '-') {
    throw new Error(`'${printable(path)}' is not a store path: expected ${storeDir}/<32 nix32 characters>-<name>`);
  }
  const name = base.slice(HASH_PART_LENGTH + 1);
  const why = invalidStoreNameReason(name);
  if (why) throw new Error(`'${printable(path)}' is not a store path: its name ${why}`);
  return { hashPart, name, baseName: base };
}

export function isStorePath(path: string, storeDir = DEFAULT_STORE_DIR): boolean {
  try {
    parseStorePath(path, storeDir);
    return path.startsWith(storeDir + '/') && !path.slice(storeDir.length + 1).includes('/');
  } catch {
    return false;
  }
}

export type { HashAlgo };
