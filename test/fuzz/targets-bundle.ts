import fc from 'fast-check';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readBundle, writeBundleFile } from '../../lib/mirror/index.js';
import { LocalStore } from '../../lib/store/index.js';
import { fuzzer, type Fuzzer } from './harness.js';
import { chunkSizesArb, chunked, mutatedOrRaw } from './mutate.js';
import { expect, rejectsCleanly } from './oracle.js';
import { Box } from './targets-nar.js';

/** `nix-store --export` bundles: a valid one of two paths (one referring to the other), mutated, or raw bytes. */
export function bundleFuzzers(): Fuzzer[] {
  let box: Box | undefined;
  let valid = Buffer.alloc(0);
  return [
    fuzzer({
      name: 'bundle.import',
      weight: 0.2,
      arbitrary: fc.tuple(mutatedOrRaw(fc.constant(0).map(() => valid), 4096), chunkSizesArb),
      timeoutMs: 10_000,
      async setup() {
        box = new Box('fi-fuzz-bundle-');
        const { parent } = box.next();
        const store = new LocalStore({ root: join(parent, 'store') });
        const a = await store.addText('a.txt', 'hello\n');
        const b = await store.addText('b.txt', `uses ${a}\n`, [a]);
        await writeBundleFile(store, [b], join(parent, 'bundle'));
        valid = readFileSync(join(parent, 'bundle'));
      },
      teardown() { box?.remove(); box = undefined; },
      async check([bytes, sizes]) {
        const { parent } = box!.next();
        const root = join(parent, 'store');
        const store = new LocalStore({ root });
        const r = await rejectsCleanly(() => readBundle(store, chunked(bytes, sizes), { where: 'fuzz.bundle' }));
        const { problems } = await new LocalStore({ root }).verify({ checkContents: true });
        expect(problems.length === 0, `store invalid after ${r.ok ? 'import' : `a refused bundle (${r.message})`}: ${JSON.stringify(problems)}`);
        expect(readdirSync(parent).join() === 'store', `bundle import wrote beside the store: ${readdirSync(parent).join()}`);
      },
    }),
  ];
}
