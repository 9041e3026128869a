import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { allFuzzers } from './fuzz/targets.js';

// CI's share of `npm run fuzz`: every fuzzer with a small budget and a fresh seed, so each run
// explores new inputs; a failure prints the shrunk input and the seed to replay it with
// `npm run fuzz -- --only NAME --seed SEED`.
const CASES = 4000;
const seed = Date.now() % 2 ** 31;
const fuzzers = allFuzzers();
const weights = fuzzers.reduce((s, f) => s + f.weight, 0);

for (const f of fuzzers) {
  test(`fuzz ${f.name}`, async () => {
    const r = await f.run(Math.max(2, Math.round((CASES * f.weight) / weights)), seed);
    assert.ok(r.cases > 0, 'no case ran');
    assert.is(r.failures, 0, `${r.name} failed (seed ${seed}): ${r.error}\ninput: ${r.counterexample}`);
  });
}

test('fuzz regression: NAR tokens and hostile text are shown escaped, on one line', async () => {
  const { listNar, encodeStr } = await import('../lib/nar/index.js');
  const nar = Buffer.concat(['nix-archive-1', '(', 'type', '\u001b[2Jregular', ')'].map((s) => encodeStr(Buffer.from(s, 'latin1'))));
  const err = await listNar((async function* () { yield nar; })()).then(() => undefined, (e: unknown) => e as Error);
  assert.ok(err instanceof Error);
  assert.match(err.message, /unknown node type '\\u001b\[2Jregular'/);
  const { parseHash } = await import('../lib/hash/index.js');
  assert.throws(() => parseHash('md5:\u0000x\n'), (e: Error) => !/[\u0000-\u001f]/.test(e.message) && e.message.includes('\\x00'));
});

test.run();
