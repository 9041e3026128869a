/** A full disk, said in the store's terms: which store, what was being written, about how much it needed. */

/** Whether `e` (or an error it wraps) is ENOSPC or EDQUOT (a quota is a full disk to the user). */
export function isNoSpace(e: unknown): boolean {
  for (let x = e, depth = 0; typeof x === 'object' && x !== null && depth < 8; x = (x as { cause?: unknown }).cause, depth++) {
    const code = (x as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  }
  return false;
}

function megabytes(bytes: number): string {
  const mb = bytes / 1e6;
  return mb < 10 ? mb.toFixed(1) : String(Math.round(mb));
}

export class NoSpaceError extends Error {
  readonly code = 'ENOSPC';

  /**
   * `neededBytes` is what the whole write needs when known; otherwise `writtenBytes`, what was
   * written before the disk filled up, is a lower bound.
   */
  constructor(storeRoot: string, writing: string, size: { neededBytes?: number; writtenBytes?: number }, cause?: unknown) {
    const need = size.neededBytes !== undefined
      ? ` (needed ~${megabytes(size.neededBytes)} MB)`
      : size.writtenBytes !== undefined ? ` (needed more than the ~${megabytes(size.writtenBytes)} MB written)` : '';
    super(`no space left on ${storeRoot} while writing ${writing}${need}; free some space (fetch-image store gc) or use another --store`, cause === undefined ? undefined : { cause });
    this.name = 'NoSpaceError';
  }
}
