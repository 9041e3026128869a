import { createHash } from 'node:crypto';
import { decodeNix32, encodeNix32, isNix32, nix32Length } from './nix32.js';
import { printable } from '../text/index.js';

export type HashAlgo = 'md5' | 'sha1' | 'sha256' | 'sha512';
export type HashFormat = 'base16' | 'nix32' | 'base64' | 'sri';

export const HASH_ALGOS: readonly HashAlgo[] = ['md5', 'sha1', 'sha256', 'sha512'];
export const HASH_FORMATS: readonly HashFormat[] = ['base16', 'nix32', 'base64', 'sri'];

const DIGEST_BYTES: Record<HashAlgo, number> = { md5: 16, sha1: 20, sha256: 32, sha512: 64 };

export function digestBytes(algo: HashAlgo): number {
  return DIGEST_BYTES[algo];
}

export function isHashAlgo(s: string): s is HashAlgo {
  return (HASH_ALGOS as readonly string[]).includes(s);
}

/** A digest together with the algorithm that made it. Immutable. */
export class Hash {
  readonly algo: HashAlgo;
  readonly bytes: Uint8Array;

  constructor(algo: HashAlgo, bytes: Uint8Array) {
    if (bytes.length !== DIGEST_BYTES[algo]) {
      throw new Error(`${algo} digest must be ${DIGEST_BYTES[algo]} bytes, got ${bytes.length}`);
    }
    this.algo = algo;
    this.bytes = bytes;
  }

  static of(algo: HashAlgo, data: string | Uint8Array): Hash {
    return new Hash(algo, createHash(algo).update(data).digest());
  }

  get base16(): string {
    return Buffer.from(this.bytes).toString('hex');
  }
  get nix32(): string {
    return encodeNix32(this.bytes);
  }
  get base64(): string {
    return Buffer.from(this.bytes).toString('base64');
  }
  get sri(): string {
    return `${this.algo}-${this.base64}`;
  }

  format(fmt: HashFormat): string {
    switch (fmt) {
      case 'base16': return this.base16;
      case 'nix32': return this.nix32;
      case 'base64': return this.base64;
      case 'sri': return this.sri;
    }
  }

  /** `algo:encoded`, the form Nix writes in narinfo files and `ca` fields. */
  prefixed(fmt: Exclude<HashFormat, 'sri'> = 'nix32'): string {
    return `${this.algo}:${this.format(fmt)}`;
  }

  equals(other: Hash): boolean {
    return this.algo === other.algo && Buffer.from(this.bytes).equals(Buffer.from(other.bytes));
  }

  toString(): string {
    return this.sri;
  }
}

/** Decodes the bare digest `text` for `algo`, telling the encoding apart by length as Nix does. */
export function decodeDigest(algo: HashAlgo, text: string, where = text): Hash {
  const size = DIGEST_BYTES[algo];
  const b64Len = Math.ceil(size / 3) * 4;
  if (text.length === size * 2) {
    if (!/^[0-9a-fA-F]+$/.test(text)) throw new Error(`invalid base16 ${algo} hash '${printable(where)}'`);
    return new Hash(algo, Buffer.from(text, 'hex'));
  }
  if (text.length === nix32Length(size)) {
    if (!isNix32(text)) throw new Error(`invalid nix32 ${algo} hash '${printable(where)}': characters outside 0-9a-z without e, o, t, u`);
    try {
      return new Hash(algo, decodeNix32(text, size));
    } catch (e) {
      throw new Error(`invalid nix32 ${algo} hash '${printable(where)}': ${(e as Error).message}`);
    }
  }
  if (text.length === b64Len) {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new Error(`invalid base64 ${algo} hash '${printable(where)}'`);
    const bytes = Buffer.from(text, 'base64');
    if (bytes.length !== size || bytes.toString('base64') !== text) {
      throw new Error(`invalid base64 ${algo} hash '${printable(where)}'`);
    }
    return new Hash(algo, bytes);
  }
  throw new Error(
    `hash '${printable(where)}' has ${text.length} characters: a ${algo} hash is ${size * 2} (base16), ` +
      `${nix32Length(size)} (nix32) or ${b64Len} (base64)`,
  );
}

/**
 * Parses any form Nix accepts: SRI (`sha256-…`), prefixed (`sha256:…` in base16, nix32 or
 * base64), or bare (algorithm from `defaultAlgo`, encoding told apart by length).
 */
export function parseHash(text: string, defaultAlgo?: HashAlgo): Hash {
  const s = text.trim();
  const sri = /^([a-z0-9]+)-(.*)$/.exec(s);
  if (sri && isHashAlgo(sri[1]!)) {
    const algo = sri[1] as HashAlgo;
    const b64 = sri[2]!;
    const bytes = Buffer.from(b64, 'base64');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || bytes.length !== DIGEST_BYTES[algo] || bytes.toString('base64') !== b64) {
      throw new Error(`invalid SRI hash '${printable(s)}': expected ${algo}- followed by the base64 of ${DIGEST_BYTES[algo]} bytes`);
    }
    return new Hash(algo, bytes);
  }
  const colon = s.indexOf(':');
  if (colon >= 0) {
    const algo = s.slice(0, colon);
    if (!isHashAlgo(algo)) throw new Error(`unknown hash algorithm '${printable(algo)}' in '${printable(s)}' (use md5, sha1, sha256 or sha512)`);
    return decodeDigest(algo, s.slice(colon + 1), s);
  }
  if (sri) throw new Error(`unknown hash algorithm '${printable(sri[1])}' in '${printable(s)}' (use md5, sha1, sha256 or sha512)`);
  if (!defaultAlgo) throw new Error(`hash '${printable(s)}' does not say its algorithm: write it as SRI (sha256-…) or sha256:…`);
  return decodeDigest(defaultAlgo, s);
}
