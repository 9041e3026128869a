import { createHash, type Hash as NodeHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Hash, type HashAlgo } from './hash.js';

/** A pass-through stream that hashes and counts what flows through it. */
export class HashingStream extends Transform {
  readonly algo: HashAlgo;
  private readonly hasher: NodeHash;
  bytes = 0;

  constructor(algo: HashAlgo) {
    super();
    this.algo = algo;
    this.hasher = createHash(algo);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hasher.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  /** The digest; call once, after the stream has finished. */
  digest(): Hash {
    return new Hash(this.algo, this.hasher.digest());
  }
}

/** Flat hash of a file's bytes, streamed with large reads. */
export async function hashFile(path: string, algo: HashAlgo = 'sha256'): Promise<Hash> {
  const hasher = createHash(algo);
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), async function (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) hasher.update(chunk);
  });
  return new Hash(algo, hasher.digest());
}
