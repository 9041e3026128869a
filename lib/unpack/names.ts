/**
 * Pure checks on member names and symlink targets, done on bytes: names need not be UTF-8 and
 * must reach the file system unchanged.
 */
const SLASH = 0x2f;
const DOT = 0x2e;

const isDot = (c: Buffer): boolean => c.length === 1 && c[0] === DOT;
export const isDotDot = (c: Buffer): boolean => c.length === 2 && c[0] === DOT && c[1] === DOT;

/** Splits on '/' dropping empty and '.' components (so `./a//b/` is `a`, `b`). */
export function components(path: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i === path.length || path[i] === SLASH) {
      const c = path.subarray(start, i);
      if (c.length > 0 && !isDot(c)) out.push(c);
      start = i + 1;
    }
  }
  return out;
}

export const OUTSIDE = 'it would land outside the output';

/**
 * The components of a member name below the output root, or the reason it is refused. An
 * empty list names the root itself (`./`). Like GNU tar, any `..` is refused, even one that
 * would stay inside.
 */
export function memberPath(name: Buffer): Buffer[] | string {
  if (name.length === 0) return 'its name is empty';
  if (name.includes(0)) return 'its name contains a NUL byte';
  if (name[0] === SLASH) return OUTSIDE;
  const parts = components(name);
  if (parts.some(isDotDot)) return OUTSIDE;
  return parts;
}

/** Joins components with '/'. */
export function joinPath(parts: readonly Buffer[]): Buffer {
  const bufs: Buffer[] = [];
  parts.forEach((p, i) => {
    if (i > 0) bufs.push(Buffer.from('/'));
    bufs.push(p);
  });
  return Buffer.concat(bufs);
}

/** `root` + '/' + components, as a Buffer path for the fs calls. */
export function under(root: Buffer, parts: readonly Buffer[]): Buffer {
  const bufs: Buffer[] = [root];
  for (const p of parts) bufs.push(Buffer.from('/'), p);
  return Buffer.concat(bufs);
}

