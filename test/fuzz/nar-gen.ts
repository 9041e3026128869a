import fc from 'fast-check';
import { encodeStr, invalidNameReason } from '../../lib/nar/index.js';

/** A file tree as a NAR describes it; directory entries sorted by name bytes, names unique. */
export type NarTree =
  | { type: 'regular'; executable: boolean; contents: Uint8Array }
  | { type: 'symlink'; target: Uint8Array }
  | { type: 'directory'; entries: [Buffer, NarTree][] };

const nameArb: fc.Arbitrary<Buffer> = fc
  .oneof(
    fc.constantFrom('a', 'b', 'A', '.a', '..a', 'x y', 'é', '\u{1F600}', '\u001b[31m', 'new\nline').map((s) => Buffer.from(s)),
    fc.uint8Array({ minLength: 1, maxLength: 10 }).map((u) => Buffer.from(u)),
  )
  .filter((n) => invalidNameReason(n) === undefined);

const targetArb = fc.uint8Array({ minLength: 1, maxLength: 24 }).filter((t) => !t.includes(0));

export const narTreeArb: fc.Arbitrary<NarTree> = fc.letrec<{ node: NarTree }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ type: fc.constant('regular' as const), executable: fc.boolean(), contents: fc.uint8Array({ maxLength: 300 }) }),
    fc.record({ type: fc.constant('symlink' as const), target: targetArb }),
    fc.record({
      type: fc.constant('directory' as const),
      entries: fc.uniqueArray(fc.tuple(nameArb, tie('node')), { maxLength: 5, selector: ([n]) => n.toString('hex') })
        .map((es) => es.sort(([a], [b]) => Buffer.compare(a, b))),
    }),
  ),
})).node;

function nodeBytes(t: NarTree, out: Buffer[]): void {
  const s = (x: string | Uint8Array) => out.push(encodeStr(x));
  s('(');
  s('type');
  if (t.type === 'regular') {
    s('regular');
    if (t.executable) { s('executable'); s(''); }
    s('contents');
    s(t.contents);
  } else if (t.type === 'symlink') {
    s('symlink');
    s('target');
    s(t.target);
  } else {
    s('directory');
    for (const [name, child] of t.entries) {
      s('entry'); s('('); s('name'); s(name); s('node');
      nodeBytes(child, out);
      s(')');
    }
  }
  s(')');
}

/** The NAR serialisation of a tree (SPEC.md §1), written independently of lib/nar's writer. */
export function narOf(t: NarTree): Buffer {
  const out: Buffer[] = [encodeStr('nix-archive-1')];
  nodeBytes(t, out);
  return Buffer.concat(out);
}

/** The tree as `listNar` reports it: one entry per node in NAR order. */
export function listingOf(t: NarTree, path: Buffer[] = []): { path: string; type: string; executable?: boolean; size?: number; target?: string }[] {
  const p = path.map((n) => n.toString('hex')).join('/');
  if (t.type === 'regular') return [{ path: p, type: 'regular', executable: t.executable, size: t.contents.length }];
  if (t.type === 'symlink') return [{ path: p, type: 'symlink', target: Buffer.from(t.target).toString('hex') }];
  return [{ path: p, type: 'directory' }, ...t.entries.flatMap(([n, c]) => listingOf(c, [...path, n]))];
}
