/** lib/sync: copy images between v2/OCI registries with the upload API, digests preserved. */
export { MAX_CHUNK_SIZE, syncImages } from './sync.js';
export type {
  BlobAction, BlobReport, ImageReport, ManifestReport, SyncOptions, SyncProgress, SyncSource, SyncSummary,
} from './sync.js';
export { parseDestination, targetFor } from './destination.js';
export type { Destination, SourceShape, Target } from './destination.js';
export { parseListFile } from './list-file.js';
export { parseSize } from './size.js';
export type { ListEntry } from './list-file.js';
export { isNonDistributable } from './plan.js';
export { receivedBytes } from './blobs.js';
export { nextLink } from './tags.js';
export type { HostOptions } from './host.js';
