// The runAsRoot layer when copyToRoot is not empty: the script's upper dir (tar form) laid over
// the copyToRoot tree, as overlayfs showed it to the script. A whiteout or an opaque directory
// removes the copyToRoot entries it hid (and stays, for the base layers below); anything else
// the script wrote replaces the copyToRoot entry, a directory in both keeping the upper's owner
// and mode.
import { chmodSync, lchownSync, lstatSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const OPAQUE = '.wh..wh..opq';
const WHITEOUT_PREFIX = '.wh.';

function lstatOrUndefined(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/**
 * Moves every entry of `upper` into `dest` (both real directories). `baseHas(rel)` says whether
 * a base layer has the path: a whiteout of a name only the copyToRoot tree had is dropped, as
 * the layer no longer holds what it hid.
 */
export function applyUpper(upper: string, dest: string, baseHas: (rel: string) => boolean, rel = ''): void {
  const names = readdirSync(upper);
  if (names.includes(OPAQUE)) {
    for (const n of readdirSync(dest)) rmSync(join(dest, n), { recursive: true, force: true });
  }
  for (const name of names) {
    const from = join(upper, name);
    const to = join(dest, name);
    if (name !== OPAQUE && name.startsWith(WHITEOUT_PREFIX)) {
      const hidden = name.slice(WHITEOUT_PREFIX.length);
      rmSync(join(dest, hidden), { recursive: true, force: true });
      if (!baseHas(`${rel}/${hidden}`)) {
        rmSync(from);
        continue;
      }
    }
    const src = lstatSync(from);
    const there = lstatOrUndefined(to);
    if (src.isDirectory() && there?.isDirectory()) {
      applyUpper(from, to, baseHas, `${rel}/${name}`);
      lchownSync(to, src.uid, src.gid);
      chmodSync(to, src.mode & 0o7777);
      continue;
    }
    if (there) rmSync(to, { recursive: true, force: true });
    renameSync(from, to);
  }
}
