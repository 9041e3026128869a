import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listNar, narChunks, restoreNar } from '../../lib/nar/index.js';
import { fuzzer, type Fuzzer } from './harness.js';
import { chunkSizesArb, chunked, mutatedOrRaw } from './mutate.js';
import { listingOf, narOf, narTreeArb } from './nar-gen.js';
import { expect, rejectsCleanly } from './oracle.js';

const validNar = narTreeArb.map(narOf);
const hostileNar = fc.tuple(mutatedOrRaw(validNar), chunkSizesArb);

const showListing = (es: Awaited<ReturnType<typeof listNar>>) =>
  es.map((e) => ({
    path: e.path.map((n) => n.toString('hex')).join('/'), type: e.type,
    ...(e.type === 'regular' ? { executable: e.executable, size: e.size } : {}),
    ...(e.type === 'symlink' ? { target: e.target?.toString('hex') } : {}),
  }));

/** The NAR of a restored tree, by the in-thread writer (dumpPath would start a worker per call). */
function dump(path: string): Buffer {
  return Buffer.concat([...narChunks(Buffer.from(path))].map((c) => Buffer.from(c)));
}

/** A scratch directory whose only child may be `out`: what the restorer may touch. */
export class Box {
  readonly root: string;
  private n = 0;
  constructor(prefix: string) {
    this.root = mkdtempSync(join(tmpdir(), prefix));
  }
  next(): { parent: string; out: string } {
    const parent = join(this.root, String(this.n++));
    mkdirSync(parent);
    return { parent, out: join(parent, 'out') };
  }
  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Fails unless the parent holds only `out` (on success) or nothing (on failure). */
export function checkConfined(parent: string, succeeded: boolean, what: string): void {
  const after = readdirSync(parent);
  const allowed = succeeded ? ['out'] : [];
  expect(JSON.stringify(after) === JSON.stringify(allowed), `${what}: parent holds ${JSON.stringify(after)} after ${succeeded ? 'success' : 'failure'}, expected ${JSON.stringify(allowed)}`);
}

export function narFuzzers(): Fuzzer[] {
  let box: Box | undefined;
  const boxed = () => box!;
  const open = (p: string) => () => { box = new Box(p); };
  const close = () => { box?.remove(); box = undefined; };
  const haveNix = spawnSync('sh', ['-c', 'command -v nix-store'], { stdio: 'ignore' }).status === 0;

  return [
    fuzzer({
      name: 'nar.roundtrip',
      arbitrary: fc.tuple(narTreeArb, chunkSizesArb),
      setup: open('fi-fuzz-nar-rt-'), teardown: close,
      async check([tree, sizes]) {
        const nar = narOf(tree);
        const listed = showListing(await listNar(chunked(nar, sizes)));
        expect(JSON.stringify(listed) === JSON.stringify(listingOf(tree)), 'listNar(narOf(tree)) differs from the tree');
        const { parent, out } = boxed().next();
        await restoreNar(chunked(nar, sizes), out);
        checkConfined(parent, true, 'restore');
        expect(dump(out).equals(nar), 'the NAR of restoreNar(nar) differs from nar');
        rmSync(parent, { recursive: true, force: true });
      },
    }),
    fuzzer({
      name: 'nar.list',
      arbitrary: hostileNar,
      async check([bytes, sizes]) {
        await rejectsCleanly(() => listNar(chunked(bytes, sizes)));
      },
    }),
    fuzzer({
      name: 'nar.restore',
      arbitrary: hostileNar,
      setup: open('fi-fuzz-nar-restore-'), teardown: close,
      async check([bytes, sizes]) {
        const { parent, out } = boxed().next();
        const r = await rejectsCleanly(() => restoreNar(chunked(bytes, sizes), out));
        checkConfined(parent, r.ok, 'restoreNar');
        rmSync(parent, { recursive: true, force: true });
      },
    }),
    // Real Nix as the judge, on a sample (a process per case): whatever we accept, Nix accepts
    // and restores to the same tree.
    ...(haveNix
      ? [fuzzer({
          name: 'nar.nix-differential',
          weight: 0.02,
          arbitrary: mutatedOrRaw(validNar),
          setup: open('fi-fuzz-nar-nix-'), teardown: close,
          async check(bytes) {
            const ours = boxed().next();
            const r = await rejectsCleanly(() => restoreNar(chunked(bytes, [bytes.length]), ours.out));
            if (!r.ok) return;
            const theirs = boxed().next();
            const nix = spawnSync('nix-store', ['--restore', theirs.out], { input: bytes, stdio: ['pipe', 'ignore', 'pipe'] });
            expect(nix.status === 0, `we accepted a NAR nix-store --restore refuses: ${nix.stderr.toString().trim()}`);
            const [a, b] = [dump(ours.out), dump(theirs.out)];
            expect(a.equals(b), 'our restore and nix-store --restore give different trees');
            rmSync(ours.parent, { recursive: true, force: true });
            rmSync(theirs.parent, { recursive: true, force: true });
          },
        })]
      : []),
  ];
}
