export {
  DEFAULT_STORE_DIR, HASH_PART_LENGTH, checkStoreName, compressHash, contentAddress, invalidStoreNameReason,
  isStorePath, makeFixedOutputPath, makeStorePath, makeTextPath, parseStorePath, sanitizeStoreName,
} from './path.js';
export type { ContentMethod, ParsedStorePath } from './path.js';
export { ReferenceScanner } from './references.js';
export { LocalStore, defaultStoreRoot } from './local-store.js';
export type { PathInfo, RegisterOptions, StoreOptions, VerifyProblem } from './local-store.js';
export { acquireLock } from './lock.js';
export type { Lock } from './lock.js';
export { canonicalise, removeTree, writeFileAtomic, fsyncDir } from './fsutil.js';
export { BlobCache } from './blob-cache.js';
export { ContentIndex } from './content-index.js';
export { LayerTreeCache } from './layer-tree-cache.js';
export type { ContentRange } from './content-index.js';
