/** Byte counts as people write them on command lines. Pure. */

const UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** Parses a byte count such as `8M`, `512KiB`, `1048576` (binary units). `0` means no chunking. */
export function parseSize(text: string, what: string): number {
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`invalid ${what} '${text}': expected a byte count such as 8M, 512K or 1048576`);
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n)) throw new Error(`invalid ${what} '${text}': too large`);
  return n;
}
