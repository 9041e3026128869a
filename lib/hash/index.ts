export { Hash, HASH_ALGOS, HASH_FORMATS, decodeDigest, digestBytes, isHashAlgo, parseHash } from './hash.js';
export type { HashAlgo, HashFormat } from './hash.js';
export { decodeNix32, encodeNix32, nix32Length } from './nix32.js';
export { HashingStream, hashFile } from './stream.js';
