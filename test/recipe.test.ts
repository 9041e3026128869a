import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Hash } from '../lib/hash/index.js';
import { HashMismatchError, makeRecipe, outputPath, realise, recipeTextPath, serializeRecipe, type Builder, type Substituter } from '../lib/recipe/index.js';
import { LocalStore, makeFixedOutputPath, makeStorePath } from '../lib/store/index.js';
import { rejects } from './helpers/assert.js';
import { tempDir } from './helpers/tmp.js';

const writeArg: Builder = async (ctx) => {
  await new Promise((r) => setTimeout(r, 30));
  writeFileSync(ctx.out, String(ctx.recipe.args.content));
};

function fixture() {
  const t = tempDir();
  const store = new LocalStore({ root: join(t.path, 's') });
  return { t, store, tmpEntries: () => readdirSync(join(t.path, 's', 'nix/var/fetch-image/tmp')) };
}

test('output path is known from name + hash before any work, and equals Nix\'s', () => {
  const h = Hash.of('sha256', 'hello\n');
  const r = makeRecipe({ name: 'hello.txt', builder: 'test:write', outputHash: { algo: 'sha256', mode: 'flat', hash: h.sri } });
  assert.is(outputPath(r), makeFixedOutputPath('flat', h, 'hello.txt'));
});

test('realise builds once, verifies, registers with deriver and ca; then no builder runs', async () => {
  const { t, store } = fixture();
  try {
    const r = makeRecipe({ name: 'hello.txt', builder: 'test:write', args: { content: 'hello\n' }, outputHash: { algo: 'sha256', mode: 'flat', hash: Hash.of('sha256', 'hello\n').sri } });
    let runs = 0;
    const builders = { 'test:write': (async (c) => { runs++; await writeArg(c); }) as Builder };
    const first = await realise(store, r, { builders });
    assert.is(first.source, 'built');
    assert.is(readFileSync(store.realPath(first.path), 'utf8'), 'hello\n');
    assert.ok(first.info.deriver?.endsWith('-hello.txt.recipe.json'));
    assert.ok(store.isValid(first.info.deriver!), 'the recipe is stored as a text path');
    assert.is(first.info.ca, `fixed:${Hash.of('sha256', 'hello\n').prefixed('nix32')}`);
    const second = await realise(store, r, { builders: {} });
    assert.is(second.source, 'store');
    assert.is(runs, 1);
  } finally {
    t.remove();
  }
});

test('hash mismatch: Nix\'s message, nothing registered, temp removed; --keep-failed keeps it', async () => {
  const { t, store, tmpEntries } = fixture();
  try {
    const want = Hash.of('sha256', 'expected');
    const r = makeRecipe({ name: 'x', builder: 'test:write', args: { content: 'actual' }, outputHash: { algo: 'sha256', mode: 'flat', hash: want.sri } });
    const err = await rejects(() => realise(store, r, { builders: { 'test:write': writeArg } }), /^hash mismatch in fixed-output derivation '\/nix\/store\/[a-z0-9]{32}-x\.recipe\.json':\n  specified: sha256-.*\n     got:    sha256-/);
    assert.instance(err, HashMismatchError);
    assert.ok(err.message.includes(`specified: ${want.sri}`));
    assert.ok(err.message.includes(`got:    ${Hash.of('sha256', 'actual').sri}`));
    assert.not.ok(store.isValid(outputPath(r)));
    assert.not.ok(existsSync(store.realPath(outputPath(r))));
    assert.equal(tmpEntries(), []);
    const kept = await rejects(() => realise(store, r, { builders: { 'test:write': writeArg }, keepFailed: true }), /kept at/);
    const dir = /kept at '([^']+)'/.exec(kept.message)![1]!;
    assert.is(readFileSync(join(dir, 'out'), 'utf8'), 'actual');
  } finally {
    t.remove();
  }
});

test('recursive outputs and failing builders', async () => {
  const { t, store, tmpEntries } = fixture();
  try {
    const mkTree: Builder = async (ctx) => {
      mkdirSync(ctx.out);
      writeFileSync(join(ctx.out, 'a'), 'A');
    };
    const probe = join(t.path, 'probe');
    mkdirSync(probe);
    writeFileSync(join(probe, 'a'), 'A');
    const { hashPath } = await import('../lib/nar/index.js');
    const h = (await hashPath(probe)).hash;
    const r = makeRecipe({ name: 'tree', builder: 'mk', outputHash: { algo: 'sha256', mode: 'recursive', hash: h.sri } });
    assert.is((await realise(store, r, { builders: { mk: mkTree } })).path, makeFixedOutputPath('recursive', h, 'tree'));
    const bad = makeRecipe({ name: 'bad', builder: 'boom', outputHash: { algo: 'sha256', mode: 'recursive', hash: h.sri } });
    await rejects(() => realise(store, bad, { builders: { boom: async () => { throw new Error('download of http://x failed: HTTP 404'); } } }), /^download of http:\/\/x failed: HTTP 404$/);
    assert.equal(tmpEntries(), []);
  } finally {
    t.remove();
  }
});

test('builder sees only its env plus the impure vars from the caller', async () => {
  const { t, store } = fixture();
  try {
    let seen: NodeJS.ProcessEnv = {};
    const r = makeRecipe({ name: 'e', builder: 'env', env: { FOO: 'bar' }, impureEnvVars: ['http_proxy', 'NIX_CURL_FLAGS'] });
    await realise(store, r, {
      builders: { env: async (c) => { seen = c.env; writeFileSync(c.out, ''); } },
      callerEnv: { http_proxy: 'http://proxy:3128', HOME: '/root', SECRET: 'x' },
    });
    assert.equal(seen, { FOO: 'bar', http_proxy: 'http://proxy:3128' });
  } finally {
    t.remove();
  }
});

test('concurrent realisations of one recipe do the work once and all succeed', async () => {
  const { t, store } = fixture();
  try {
    let runs = 0;
    const r = makeRecipe({ name: 'c', builder: 'w', args: { content: 'c' }, outputHash: { algo: 'sha256', mode: 'flat', hash: Hash.of('sha256', 'c').sri } });
    const builders = { w: (async (c) => { runs++; await writeArg(c); }) as Builder };
    const results = await Promise.all([1, 2, 3, 4].map(() => realise(store, r, { builders })));
    assert.is(runs, 1);
    assert.is(new Set(results.map((x) => x.path)).size, 1);
  } finally {
    t.remove();
  }
});

test('substituters are asked first; a lying one is ignored and the builder runs', async () => {
  const { t, store } = fixture();
  try {
    const r = makeRecipe({ name: 's', builder: 'w', args: { content: 'good' }, outputHash: { algo: 'sha256', mode: 'flat', hash: Hash.of('sha256', 'good').sri } });
    const liar: Substituter = { name: 'liar', substitute: async (_p, _r, out) => { writeFileSync(out, 'evil'); return true; } };
    const logs: string[] = [];
    const res = await realise(store, r, { builders: { w: writeArg }, substituters: [liar], log: (l) => logs.push(l) });
    assert.is(res.source, 'built');
    assert.ok(logs.some((l) => l.includes('substituter liar failed') && l.includes('hash mismatch')));
    const { t: t2, store: s2 } = fixture();
    try {
      const honest: Substituter = { name: 'honest', substitute: async (_p, _r, out) => { writeFileSync(out, 'good'); return true; } };
      assert.is((await realise(s2, r, { builders: {}, substituters: [honest] })).source, 'substituted');
    } finally {
      t2.remove();
    }
  } finally {
    t.remove();
  }
});

test('input-addressed: inputs are in the text and decide the path; input recipes realised first; references scanned against the inputs\' closure only', async () => {
  const { t, store } = fixture();
  try {
    const dep = await store.addText('dep.txt', 'dependency\n');
    const other = await store.addText('other.txt', 'not an input\n');
    const lib = await store.addText('lib.txt', `uses ${dep}\n`, [dep]);
    const fetched = makeRecipe({ name: 'fetched.txt', builder: 'test:write', args: { content: 'fetched\n' }, outputHash: { algo: 'sha256', mode: 'flat', hash: Hash.of('sha256', 'fetched\n').sri } });
    const fetchedPath = outputPath(fetched, store.storeDir);
    let runs = 0;
    const builders = {
      'test:write': writeArg,
      'test:mention': (async (ctx) => {
        runs++;
        for (const p of ctx.recipe.inputs ?? []) assert.ok(store.isValid(p), `input ${p} valid before the build`);
        writeFileSync(ctx.out, `${dep} ${fetchedPath} ${other}\n`);
      }) as Builder,
    };
    const r = makeRecipe({ name: 'out.txt', builder: 'test:mention', inputs: [lib, fetchedPath], inputRecipes: [fetched] });
    const text = serializeRecipe(r);
    assert.ok(text.includes(`"inputs":["${[lib, fetchedPath].sort().join('","')}"]`), text);
    assert.not.ok(text.includes('inputRecipes'), 'input recipes are named by their outputs only');
    assert.is(outputPath(r), makeStorePath('output:out', Hash.of('sha256', text), 'out.txt'));
    const other2 = makeRecipe({ name: 'out.txt', builder: 'test:mention', inputs: [dep, fetchedPath] });
    assert.is.not(outputPath(other2), outputPath(r), 'other inputs, other path');

    const first = await realise(store, r, { builders });
    assert.is(first.source, 'built');
    assert.ok(store.isValid(fetchedPath), 'the fixed-output input was realised first');
    // dep is in lib's closure; `other` is mentioned but not an input; lib is an input but not mentioned.
    assert.equal(first.info.references, [dep, fetchedPath].sort());
    assert.is(first.info.deriver, recipeTextPath(r, store.storeDir));
    assert.equal(store.requireInfo(first.info.deriver!).references, [lib, fetchedPath].sort(), 'the recipe text references its inputs');
    assert.equal(store.closure([first.path]).sort(), [dep, fetchedPath, first.path].sort());
    const again = await realise(store, r, { builders });
    assert.is(again.source, 'store');
    assert.is(runs, 1);
    // Fixed-output recipes keep their text (and so their paths): no new fields.
    assert.not.ok(serializeRecipe(fetched).includes('inputs'));
    await rejects(() => realise(store, makeRecipe({ name: 'bad.txt', builder: 'test:mention', inputs: [`${store.storeDir}/${'0'.repeat(32)}-gone`] }), { builders }), /input '.*-gone' of 'bad\.txt' is not valid/);
  } finally {
    t.remove();
  }
});

test.run();
