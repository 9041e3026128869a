/**
 * Safe archive unpacking for `fetch-image url --unpack` (like nixpkgs' fetchzip).
 *
 * - Formats by magic bytes: tar (v7, ustar, GNU, pax), tar.gz, tar.xz, tar.zst, zip. bzip2 is
 *   recognised and refused with a clear error: the one streaming JS decoder (unbzip2-stream)
 *   ran 3x slower than bzip2 and peaked near 400 MB RSS on 100 MB.
 * - Output: files 0644 or 0755 (owner-execute kept), directories, symlinks (any target, absolute
 *   too: a target is only text, as in a NAR and in nix-prefetch-url --unpack), hard links (as
 *   hard links inside the output). Ownership, times and xattrs are ignored; pax global headers
 *   apply their path, linkpath and size to the members after them, as GNU tar does.
 *   Names are bytes end to end, so the NAR hash equals that of GNU tar's (or unzip's) output.
 * - Refused, with a one-line message naming the member: `..` or absolute names; members
 *   reached through a symlink (even one pointing inside), so nothing is written outside;
 *   hard links to outside, to directories or to members not yet extracted;
 *   device nodes, FIFOs, sockets; encrypted or non-deflate zip entries. Sparse tar members (old
 *   GNU, pax 0.0/0.1/1.0) are written with holes, as GNU tar does.
 * - Repeated names: a later member replaces an earlier file or link (unlinked first, never
 *   written through); directories merge; nothing replaces a directory.
 * - Stripping as fetchzip: the top level must hold exactly one entry; a directory becomes the
 *   output, a lone file stays inside it; otherwise an error (stripOneTopLevel: false keeps all).
 * - On any error `dest` and the temporary directory beside it are removed.
 * - Memory stays flat: data streams through, and xz/zstd decoders are fed small slices so that
 *   highly compressible data cannot balloon; a zip's central directory is read entry by entry.
 */
export { unpackArchive } from './unpack.js';
export type { UnpackOptions, UnpackResult } from './unpack.js';
export type { ArchiveFormat } from './detect.js';
/** Tar header parsing primitives, for readers of tar files other than the unpacker (lib/image's member index). */
export { checksumOk, isZeroBlock, parseHeader, parsePax } from './tar-header.js';
export type { PaxRecords, TarHeader as ParsedTarHeader } from './tar-header.js';
// For unpackers with other rules on top (lib/sandbox's root file system layers): the same reader and safe writer.
export { readTar } from './tar.js';
export { SafeTree } from './tree.js';
export { memberPath } from './names.js';
export type { ArchiveEntry, DeviceNumbers, EntryMeta, EntrySink } from './entry.js';
export { RefusedEntryError, UnsupportedArchiveError, CorruptArchiveError, TopLevelError, errnoCode } from './errors.js';
