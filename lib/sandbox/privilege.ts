import { readFile } from 'node:fs/promises';

/**
 * Root of the initial user namespace: the only caller that can chown to any owner, make device
 * nodes and set trusted.* xattrs. uid 0 inside a user namespace maps a range of ids, not all.
 */
export async function isRealRoot(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  const map = await readFile('/proc/self/uid_map', 'utf8').catch(() => '');
  return /^\s*0\s+0\s+4294967295\s*$/.test(map);
}
