/**
 * The runAsRoot stage: a script run as uid 0 over an overlay of read-only lower dirs, its
 * changes caught in an upper dir, in one of two sandboxes that must give the same bytes:
 * - `namespace` (namespace/): mount, pid, uts, ipc and net namespaces (a user namespace with
 *   the caller's subuid/subgid ranges when not root), overlayfs, pivot_root. Starts in ms.
 * - `vm` (vm/): QEMU with the Debian kernel and a busybox initrd, KVM when it works, else TCG;
 *   needs no root, so it is also the rootless fallback.
 * Knows nothing of images: the caller unpacks layers with prepareLowerDir (cached per diff_id),
 * writes the script and environment, and turns the upper dir (tar form) into a layer.
 *
 * What both sandboxes keep the same, so that their layers are byte-identical: host name
 * SANDBOX_HOSTNAME, umask 022, exactly req.env, the mount points supplied by a bottom lower
 * (never created in the upper), the upper root's owner and mode from the top lower's root
 * (upperRootLikeTopLower), overlay without redirect_dir/metacopy/index, and upperToTarForm's
 * conventions (whiteouts and opaque markers: empty files, 0:0, mode 0644).
 */
export type { RootStageRequest, RootStageResult, SandboxKind } from './types.js';
export { OUTPUT_TAIL_LINES, SANDBOX_HOSTNAME, SandboxError } from './types.js';
export { prepareLowerDir } from './lower-dir.js';
export { LOWER_FORM_MARKER, LOWER_TAR, LOWER_TREE, readLowerForm } from './lower-form.js';
export type { LowerDir } from './lower-form.js';
export { upperRootLikeTopLower, upperToTarForm } from './upper-form.js';
export type { TarFormCounts } from './upper-form.js';
export { OutputTail } from './output.js';
export { chooseSandbox, runRootStage } from './run.js';
export { RootStageTimeoutError } from './types.js';
