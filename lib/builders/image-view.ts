// A read-only look at the merged root file system a runAsRoot script will see (the lower dirs,
// top first), without mounting it: enough to find the image's shell and shadow tools.
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';

const MAX_LINK_HOPS = 40;

/** An overlay whiteout: a char device 0/0. */
const isWhiteout = (st: Stats): boolean => st.isCharacterDevice() && st.rdev === 0;

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/** The entry at `parts` in one tree, only when every parent is a real directory there (no host symlink is followed). */
function entryIn(tree: string, parts: readonly string[]): Stats | undefined {
  for (let i = 1; i < parts.length; i++) {
    if (!lstatOrUndefined(join(tree, ...parts.slice(0, i)))?.isDirectory()) return undefined;
  }
  return lstatOrUndefined(join(tree, ...parts));
}

export class ImageView {
  /** `trees`: real directories whose contents form the root, top first (overlay lower trees or plain trees). */
  constructor(private readonly trees: readonly string[]) {}

  private entry(parts: readonly string[]): { tree: string; st: Stats } | undefined {
    for (const tree of this.trees) {
      const st = entryIn(tree, parts);
      if (!st) continue;
      return isWhiteout(st) ? undefined : { tree, st };
    }
    return undefined;
  }

  /** What `path` (absolute, inside the image) is after following symlinks inside the image; undefined when absent. */
  resolve(path: string): Stats | undefined {
    return this.walk(path, true);
  }

  /** Whether the image has an entry at `path` (parents' symlinks followed, the last one not). */
  has(path: string): boolean {
    return this.walk(path, false) !== undefined;
  }

  private walk(path: string, followLast: boolean): Stats | undefined {
    let pending = path.split('/').filter(Boolean);
    let parts: string[] = [];
    let hops = 0;
    let last: Stats | undefined = this.entry([])?.st;
    while (pending.length) {
      const comp = pending.shift()!;
      if (comp === '.') continue;
      if (comp === '..') {
        parts.pop();
        continue;
      }
      const found = this.entry([...parts, comp]);
      if (!found) return undefined;
      if (found.st.isSymbolicLink() && (followLast || pending.length > 0)) {
        if (++hops > MAX_LINK_HOPS) return undefined;
        const target = readlinkSync(join(found.tree, ...parts, comp));
        if (target.startsWith('/')) parts = [];
        pending = [...target.split('/').filter(Boolean), ...pending];
        continue;
      }
      parts.push(comp);
      last = found.st;
    }
    return last;
  }

  isFile(path: string): boolean {
    return this.resolve(path)?.isFile() ?? false;
  }
}
