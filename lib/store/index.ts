export {
  DEFAULT_STORE_DIR, HASH_PART_LENGTH, checkStoreName, compressHash, contentAddress, invalidStoreNameReason,
  isStorePath, makeFixedOutputPath, makeStorePath, makeTextPath, parseStorePath, sanitizeStoreName,
} from './path.js';
export type { ContentMethod, ParsedStorePath } from './path.js';
export { ReferenceScanner } from './references.js';
export { DamagedPathError, LocalStore, defaultStoreRoot } from './local-store.js';
export type { GcResult, GcRoot, PathInfo, Quarantined, RecordEntry, RecordState, RegisterOptions, StoreOptions } from './local-store.js';
export type { ProblemKind, VerifyOptions, VerifyProblem, VerifyReport } from './verify.js';
export {
  checkContentAddressContent, checkContentAddressPath, hashForContentAddress, inferContentAddress, parseContentAddress,
  pathForContentAddress, sameContentAddress,
} from './content-address.js';
export type { ContentAddress } from './content-address.js';
export { removeOwnTempEntries } from './temp-areas.js';
export { acquireLock, releaseAllLocks } from './lock.js';
export type { Lock } from './lock.js';
export { canonicalise, removeTree, treeBytes, writeFileAtomic, fsyncDir } from './fsutil.js';
export { BlobCache } from './blob-cache.js';
export { NoSpaceError, isNoSpace } from './no-space.js';
export { ContentIndex } from './content-index.js';
export { LayerTreeCache } from './layer-tree-cache.js';
export type { ContentRange } from './content-index.js';
