import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { Hash, hashFile, type HashAlgo } from '../hash/index.js';
import { dumpPath } from './dump.js';

export interface PathHash {
  hash: Hash;
  /** Bytes hashed: the NAR size for a recursive hash, the file size for a flat one. */
  size: number;
}

/** Recursive hash: the hash of the path's NAR serialisation (what `nix-hash` prints). */
export async function hashPath(path: string, algo: HashAlgo = 'sha256'): Promise<PathHash> {
  const h = createHash(algo);
  let size = 0;
  for await (const chunk of dumpPath(path)) {
    h.update(chunk);
    size += chunk.length;
  }
  return { hash: new Hash(algo, h.digest()), size };
}

/** Flat hash: the hash of a regular file's bytes (`nix-hash --flat`). */
export async function hashFlat(path: string, algo: HashAlgo = 'sha256'): Promise<PathHash> {
  const st = statSync(path);
  if (!st.isFile()) throw new Error(`'${path}' is not a regular file: a flat hash needs one`);
  return { hash: await hashFile(path, algo), size: st.size };
}
