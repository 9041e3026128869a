import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { Hash, hashFile, type HashAlgo } from '../hash/index.js';
import { dumpPath } from './dump.js';
import { encodeStr, padding } from './format.js';

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

/**
 * Hashes the NAR of a single regular file from its content stream, without producing the NAR:
 * the framing around the bytes is fixed once the size and executable bit are known.
 */
export class RegularFileNarHasher {
  private readonly h: ReturnType<typeof createHash>;
  private readonly algo: HashAlgo;
  private readonly size: number;
  private framing = 0;
  private seen = 0;

  constructor(size: number, executable: boolean, algo: HashAlgo = 'sha256') {
    this.h = createHash(algo);
    this.algo = algo;
    this.size = size;
    const tokens = ['nix-archive-1', '(', 'type', 'regular', ...(executable ? ['executable', ''] : []), 'contents'];
    for (const t of tokens) this.feed(encodeStr(t));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(size));
    this.feed(len);
  }

  private feed(b: Uint8Array): void {
    this.h.update(b);
    this.framing += b.length;
  }

  update(chunk: Uint8Array): void {
    this.h.update(chunk);
    this.seen += chunk.length;
  }

  /** The NAR hash and NAR size; throws if the content was not exactly `size` bytes. */
  digest(): PathHash {
    if (this.seen !== this.size) throw new Error(`file content was ${this.seen} bytes, expected ${this.size}`);
    this.feed(Buffer.alloc(padding(this.size)));
    this.feed(encodeStr(')'));
    return { hash: new Hash(this.algo, this.h.digest()), size: this.framing + this.size };
  }
}

/** Flat hash and NAR hash of a regular file in one read. */
export async function hashFlatAndNar(path: string, algo: HashAlgo = 'sha256'): Promise<{ flat: Hash; nar: PathHash }> {
  const st = statSync(path);
  if (!st.isFile()) throw new Error(`'${path}' is not a regular file`);
  const flat = createHash(algo);
  const nar = new RegularFileNarHasher(st.size, (st.mode & 0o100) !== 0, 'sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    flat.update(chunk as Buffer);
    nar.update(chunk as Buffer);
  }
  return { flat: new Hash(algo, flat.digest()), nar: nar.digest() };
}
