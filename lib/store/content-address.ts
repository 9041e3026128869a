// Checks that a `CA` field really addresses its store path, and that the content matches it.
import { lstat } from 'node:fs/promises';
import { Hash, hashFile, parseHash } from '../hash/index.js';
import { hashPath } from '../nar/index.js';
import { contentAddress, makeFixedOutputPath, makeStorePath, parseStorePath } from './path.js';

export interface ContentAddress {
  method: 'flat' | 'recursive' | 'text';
  hash: Hash;
}

export function parseContentAddress(ca: string, where: string): ContentAddress {
  const text = /^text:(.+)$/.exec(ca);
  const fixed = /^fixed:(r:)?(.+)$/.exec(ca);
  try {
    if (text) return { method: 'text', hash: parseHash(text[1]!) };
    if (fixed) return { method: fixed[1] ? 'recursive' : 'flat', hash: parseHash(fixed[2]!) };
  } catch (e) {
    throw new Error(`${where}: CA '${ca}': ${(e as Error).message}`);
  }
  throw new Error(`${where}: CA '${ca}' is neither text:… nor fixed:…`);
}

/** The store path a content address gives for `name` with these references. */
export function pathForContentAddress(ca: ContentAddress, name: string, references: readonly string[], self: string, storeDir: string): string {
  const others = references.filter((r) => r !== self);
  if (ca.method === 'text') {
    if (ca.hash.algo !== 'sha256') throw new Error(`a text content address must be sha256, not ${ca.hash.algo}`);
    if (others.length !== references.length) throw new Error('a text path cannot refer to itself');
    return makeStorePath('text' + [...others].sort().map((r) => `:${r}`).join(''), ca.hash, name, storeDir);
  }
  return makeFixedOutputPath(ca.method, ca.hash, name, { references: others, self: others.length !== references.length, storeDir });
}

/** Throws unless `ca` addresses `storePath` (with its references). */
export function checkContentAddressPath(storePath: string, ca: string, references: readonly string[], storeDir: string, where: string): ContentAddress {
  const parsed = parseContentAddress(ca, where);
  const { name } = parseStorePath(storePath, storeDir);
  let want: string;
  try {
    want = pathForContentAddress(parsed, name, references, storePath, storeDir);
  } catch (e) {
    throw new Error(`${where}: CA '${ca}' is impossible for ${storePath}: ${(e as Error).message}`);
  }
  if (want !== storePath) throw new Error(`${where}: CA '${ca}' gives ${want}, not ${storePath}`);
  return parsed;
}

/** Whether two `ca` strings say the same (they may encode the hash differently). */
export function sameContentAddress(a: string, b: string): boolean {
  try {
    const x = parseContentAddress(a, '');
    const y = parseContentAddress(b, '');
    return x.method === y.method && x.hash.equals(y.hash);
  } catch {
    return false;
  }
}

/**
 * The hash of the content at `file` in the content address's method and algorithm (NAR hash for
 * recursive, file hash for flat and text); `narHash` saves a second read when already known.
 */
export async function hashForContentAddress(ca: ContentAddress, file: string, narHash?: Hash): Promise<Hash> {
  if (ca.method === 'recursive') {
    if (narHash && ca.hash.algo === narHash.algo) return narHash;
    return (await hashPath(file, ca.hash.algo)).hash;
  }
  const st = await lstat(file);
  if (!st.isFile()) throw new Error(`a ${ca.method} content address needs a regular file`);
  return hashFile(file, ca.hash.algo);
}

/** Throws unless the restored content at `file` (with NAR hash `narHash`) has the content address. */
export async function checkContentAddressContent(ca: ContentAddress, narHash: Hash, file: string, where: string): Promise<void> {
  let got: Hash;
  try {
    got = await hashForContentAddress(ca, file, narHash);
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
  if (!got.equals(ca.hash)) throw new Error(`${where}: content does not match its CA: expected ${ca.hash.sri}, got ${got.sri}`);
}

/**
 * The content address of a path whose metadata was lost (bundles carry none), if its name and
 * content prove one: recursive sha256, flat sha256 or text. Undefined for input-addressed paths.
 */
export async function inferContentAddress(storePath: string, narHash: Hash, references: readonly string[], file: string, storeDir: string): Promise<string | undefined> {
  const { name } = parseStorePath(storePath, storeDir);
  const tryCa = (ca: ContentAddress): boolean => {
    try {
      return pathForContentAddress(ca, name, references, storePath, storeDir) === storePath;
    } catch {
      return false;
    }
  };
  if (tryCa({ method: 'recursive', hash: narHash })) return contentAddress('recursive', narHash);
  const st = await lstat(file);
  if (!st.isFile()) return undefined;
  const flat = await hashFile(file, 'sha256');
  if (tryCa({ method: 'flat', hash: flat })) return contentAddress('flat', flat);
  if (tryCa({ method: 'text', hash: flat })) return contentAddress('text', flat);
  return undefined;
}
