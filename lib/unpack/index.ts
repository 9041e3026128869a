export { unpackArchive } from './unpack.js';
export type { UnpackOptions, UnpackResult } from './unpack.js';
export type { ArchiveFormat } from './detect.js';
export { detectFormat } from './detect.js';
export { RefusedEntryError, UnsupportedArchiveError, CorruptArchiveError, TopLevelError } from './errors.js';
