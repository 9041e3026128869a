import { lstat, readlink } from 'node:fs/promises';
import { components, isDotDot, under } from './names.js';

/** As Linux's limit on symlinks followed in one lookup. */
const MAX_HOPS = 40;

/**
 * Whether the symlink at `link` (components below `root`) resolves to somewhere outside
 * `root`, following the symlinks it meets inside the tree as the kernel would. Checking each
 * target as text is not enough: `t -> d/s/..` stays inside on paper but leaves when `d/s` is
 * itself a link to `..`. Components that do not exist are taken as plain text from there on.
 */
export async function leavesRoot(root: Buffer, link: readonly Buffer[]): Promise<boolean> {
  const at: Buffer[] = link.slice(0, -1);
  const first = await readlink(under(root, link), { encoding: 'buffer' });
  if (first[0] === 0x2f) return true;
  let pending = components(first);
  let onDisk = true;
  let hops = 0;
  while (pending.length > 0) {
    const c = pending.shift() as Buffer;
    if (isDotDot(c)) {
      if (at.length === 0) return true;
      at.pop();
      continue;
    }
    at.push(c);
    if (!onDisk) continue;
    const here = under(root, at);
    const st = await lstat(here).catch(() => null);
    if (st === null || (!st.isDirectory() && !st.isSymbolicLink())) {
      onDisk = false;
    } else if (st.isSymbolicLink()) {
      // A loop never resolves, so it reaches nothing outside either.
      if (++hops > MAX_HOPS) return false;
      const target = await readlink(here, { encoding: 'buffer' });
      if (target[0] === 0x2f) return true;
      at.pop();
      pending = [...components(target), ...pending];
    }
  }
  return false;
}
