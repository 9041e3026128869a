import fc from 'fast-check';
import { rmSync, writeFileSync } from 'node:fs';

import { gzipSync } from 'node:zlib';
import { unpackArchive } from '../../lib/unpack/index.js';
import { tarMemberArb, tarOf, zipMemberArb, zipOf } from './archive-gen.js';
import { fuzzer, type Fuzzer } from './harness.js';
import { mutatedOrRaw } from './mutate.js';
import { expect, rejectsCleanly } from './oracle.js';
import { Box, checkConfined } from './targets-nar.js';

/** Unpacks `bytes` in a box of its own; the archive file sits outside the box. */
async function unpackConfined(box: Box, bytes: Uint8Array, strip: boolean): Promise<void> {
  const { parent, out } = box.next();
  const archive = `${parent}.archive`;
  writeFileSync(archive, bytes);
  const r = await rejectsCleanly(() => unpackArchive(archive, out, { stripOneTopLevel: strip }));
  checkConfined(parent, r.ok, 'unpackArchive');
  if (!r.ok) expect(!/\n/.test(r.message), 'multi-line error');
  rmSync(parent, { recursive: true, force: true });
  rmSync(archive, { force: true });
}

export function archiveFuzzers(): Fuzzer[] {
  let box: Box | undefined;
  const open = (p: string) => () => { box = new Box(p); };
  const close = () => { box?.remove(); box = undefined; };
  const tars = fc.array(tarMemberArb, { minLength: 1, maxLength: 6 }).map(tarOf);
  const zips = fc.array(zipMemberArb, { minLength: 1, maxLength: 5 }).map(zipOf);
  return [
    fuzzer({
      name: 'unpack.tar',
      arbitrary: fc.tuple(mutatedOrRaw(tars), fc.boolean(), fc.boolean()),
      setup: open('fi-fuzz-tar-'), teardown: close,
      async check([bytes, gzip, strip]) {
        await unpackConfined(box!, gzip ? gzipSync(bytes) : bytes, strip);
      },
    }),
    fuzzer({
      name: 'unpack.zip',
      arbitrary: fc.tuple(mutatedOrRaw(zips), fc.boolean()),
      setup: open('fi-fuzz-zip-'), teardown: close,
      async check([bytes, strip]) {
        await unpackConfined(box!, bytes, strip);
      },
    }),
  ];
}

