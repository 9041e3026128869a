import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { Hash, parseHash } from '../lib/hash/index.js';
import { LocalStore, ReferenceScanner, makeFixedOutputPath, makeTextPath, parseStorePath, invalidStoreNameReason } from '../lib/store/index.js';
import { rejects } from './helpers/assert.js';
import { havePeer } from './helpers/peers.js';
import { runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';
import { makeTrickyTree } from './helpers/trees.js';
import { CLI_PATH } from './helpers/cli.js';

test('SPEC §3 worked examples', () => {
  const narOf = (s: string) => Hash.of('sha256', s);
  // NAR of a file holding "mycontent\n" has sha256 2bfef6…
  const myNar = parseHash('sha256:2bfef67de873c54551d884fdab3055d84d573e654efa79db3c0d7b98883f9ee3');
  assert.is(makeFixedOutputPath('recursive', myNar, 'myfile'), '/nix/store/xv2iccirbrvklck36f1g7vldn5v58vck-myfile');
  assert.is(makeFixedOutputPath('flat', parseHash('sha256:f3f3c4763037e059b4d834eaf68595bbc02ba19f6d2a500dce06d124e2cd99bb'), 'bar'),
    '/nix/store/a00d5f71k0vp5a6klkls0mvr1f7sx6ch-bar');
  const emptyNar = parseHash('sha256:77ac62e2629d8e45f624589c0c8bf99e24b3a722349bf1e79bc186008534e246');
  assert.is(makeFixedOutputPath('recursive', emptyNar, 'empty-file'), '/nix/store/ij3gw72f4n5z4dz6nnzl1731p9kmjbwr-empty-file');
  assert.ok(narOf('x'));
});

test('store names are validated with reasons', () => {
  assert.is(invalidStoreNameReason('ok-name_1.2+x?=y'), undefined);
  assert.match(invalidStoreNameReason('.hidden')!, /starts with/);
  assert.match(invalidStoreNameReason('a/b')!, /contains '\/'/);
  assert.match(invalidStoreNameReason('x'.repeat(212))!, /212 characters/);
  assert.match(invalidStoreNameReason('')!, /empty/);
  assert.throws(() => parseStorePath('/nix/store/abc-x'), /not a store path/);
  assert.is(parseStorePath('/nix/store/xv2iccirbrvklck36f1g7vldn5v58vck-myfile').name, 'myfile');
});

test('store paths equal what nix-store --add-fixed prints, flat and recursive, with real content', async () => {
  if (!havePeer('nix-store')) return;
  const t = tempDir();
  const store = new LocalStore({ root: join(t.path, 'ours') });
  try {
    const tree = join(t.path, 'tree');
    makeTrickyTree(tree, { manyEntries: 300, bigFileBytes: 1.5 * 1024 * 1024 });
    const file = join(t.path, 'file.bin');
    writeFileSync(file, Buffer.alloc(100_000, 7));
    const nixRoot = `local?root=${join(t.path, 'nix')}`;
    const cases: [string, 'flat' | 'recursive'][] = [[tree, 'recursive'], [file, 'recursive'], [file, 'flat']];
    for (const [src, method] of cases) {
      const args = ['--store', nixRoot, '--add-fixed', ...(method === 'recursive' ? ['--recursive'] : []), 'sha256', src];
      const nixPath = (await runOk('nix-store', args)).toString().trim();
      const name = src.split('/').pop()!;
      const info = await store.addPath(src, { name, method });
      assert.is(info.path, nixPath, `${method} ${name}`);
      // Our recorded NAR hash and the canonical copy are right too.
      const ours = (await runOk('nix-hash', ['--type', 'sha256', '--base32', store.realPath(info.path)])).toString().trim();
      assert.is(info.narHash, `sha256:${ours}`);
    }
  } finally {
    t.remove();
  }
});

test('added paths are canonical: read-only, mtime 1; path-info has everything', async () => {
  const t = tempDir();
  const store = new LocalStore({ root: join(t.path, 's') });
  try {
    const d = join(t.path, 'd');
    mkdirSync(join(d, 'sub'), { recursive: true });
    writeFileSync(join(d, 'sub', 'x'), '#!/bin/sh\n');
    chmodSync(join(d, 'sub', 'x'), 0o775);
    writeFileSync(join(d, 'f'), 'data');
    const info = await store.addPath(d, { name: 'd', method: 'recursive' });
    const real = store.realPath(info.path);
    assert.is(statSync(real).mode & 0o777, 0o555);
    assert.is(statSync(join(real, 'f')).mode & 0o777, 0o444);
    assert.is(statSync(join(real, 'sub', 'x')).mode & 0o777, 0o555);
    assert.is(statSync(join(real, 'f')).mtimeMs, 1000);
    assert.is(lstatSync(real).mtimeMs, 1000);
    assert.ok(info.ca?.startsWith('fixed:r:sha256:'));
    assert.is(info.references.length, 0);
    assert.ok(info.registrationTime > 1_700_000_000);
    assert.equal(store.list().map((i) => i.path), [info.path]);
    // Adding again is a no-op that returns the same info.
    assert.equal((await store.addPath(d, { name: 'd', method: 'recursive' })).registrationTime, info.registrationTime);
  } finally {
    t.remove();
  }
});

test('text paths with references, closure, gc roots, delete refusing live paths', async () => {
  const t = tempDir();
  const store = new LocalStore({ root: join(t.path, 's') });
  try {
    const f = join(t.path, 'leaf');
    writeFileSync(f, 'leaf');
    const leaf = (await store.addPath(f, { name: 'leaf', method: 'flat' })).path;
    const mid = await store.addText('mid', `uses ${leaf}\n`, [leaf]);
    assert.is(mid, makeTextPath('mid', `uses ${leaf}\n`, [leaf]));
    const top = await store.addText('top', `uses ${mid}\n`, [mid]);
    writeFileSync(join(t.path, 'junk'), 'junk');
    const junk = (await store.addPath(join(t.path, 'junk'), { name: 'junk', method: 'flat' })).path;
    assert.equal(store.closure([top]), [leaf, mid, top]);

    store.addRoot(top, 'keep');
    const dry = await store.gc({ dryRun: true });
    assert.equal(dry.dead, [junk]);
    assert.ok(store.isValid(junk), 'dry run deletes nothing');
    await rejects(() => store.delete([mid]), /protected by GC root 'keep' \(via \/nix\/store\/[a-z0-9]+-top\)/);
    const r = await store.gc();
    assert.equal(r.dead, [junk]);
    assert.not.ok(store.isValid(junk));
    assert.not.ok(existsSync(store.realPath(junk)));
    assert.ok(store.isValid(leaf) && store.isValid(mid) && store.isValid(top));
    // Without the root, deleting a referenced path is refused; deleting top-down works.
    const { rmSync } = await import('node:fs');
    rmSync(join(store.rootsDir, 'keep'));
    await rejects(() => store.delete([leaf]), /still referenced by/);
    await store.delete([top, mid, leaf]);
    assert.equal(store.list(), []);
  } finally {
    t.remove();
  }
});

test('verify --check-contents reports every tampered path', async () => {
  const t = tempDir();
  const store = new LocalStore({ root: join(t.path, 's') });
  try {
    const paths: string[] = [];
    for (const n of ['a', 'b', 'c']) {
      const d = join(t.path, n);
      mkdirSync(d);
      writeFileSync(join(d, 'f'), n);
      paths.push((await store.addPath(d, { name: n, method: 'recursive' })).path);
    }
    assert.equal((await store.verify({ checkContents: true })).problems, []);
    for (const p of [paths[0]!, paths[2]!]) {
      const f = join(store.realPath(p), 'f');
      chmodSync(store.realPath(p), 0o755);
      chmodSync(f, 0o644);
      writeFileSync(f, 'tampered');
    }
    const r = await store.verify({ checkContents: true });
    assert.is(r.checked, 3);
    assert.equal(r.problems.map((x) => x.path).sort(), [paths[0]!, paths[2]!].sort());
    assert.match(r.problems[0]!.problem, /NAR hash mismatch: recorded sha256-.*, got sha256-/);
  } finally {
    t.remove();
  }
});

test('verify: content a live process is registering (its path lock held) is not an orphan; once released it is', async () => {
  const t = tempDir();
  const store = new LocalStore({ root: join(t.path, 's') });
  try {
    const p = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-in-flight';
    const lock = await store.lockPath(p);
    writeFileSync(store.realPath(p), 'moved in, record not written yet');
    assert.equal((await store.verify()).problems, []);
    assert.equal((await store.gc({ dryRun: true })).orphans, []);
    lock.release();
    assert.equal((await store.verify()).problems.map((x) => `${x.kind} ${x.path}`), [`orphan ${p}`]);
  } finally {
    t.remove();
  }
});

test('reference scanner finds hash parts split across chunk boundaries', () => {
  const a = '/nix/store/xv2iccirbrvklck36f1g7vldn5v58vck-myfile';
  const b = '/nix/store/a00d5f71k0vp5a6klkls0mvr1f7sx6ch-bar';
  const c = '/nix/store/ij3gw72f4n5z4dz6nnzl1731p9kmjbwr-empty-file';
  const text = Buffer.from(`xx${a}yy--${b.slice(11, 43)}!zz`);
  for (let split = 0; split <= text.length; split++) {
    const s = new ReferenceScanner([a, b, c]);
    s.update(text.subarray(0, split));
    s.update(text.subarray(split));
    assert.equal(s.result(), [b, a].sort(), `split at ${split}`);
  }
});

test('two processes adding the same content at once: both succeed, one path', async () => {
  const t = tempDir();
  try {
    const d = join(t.path, 'd');
    makeTrickyTree(d, { manyEntries: 200, bigFileBytes: 2 * 1024 * 1024 });
    const cli = CLI_PATH;
    const root = join(t.path, 's');
    const outs = await Promise.all([1, 2, 3].map(() => runOk('node', [cli, '--store', root, 'store', 'add', d])));
    const printed = new Set(outs.map((o) => o.toString().trim()));
    assert.is(printed.size, 1);
    const store = new LocalStore({ root });
    assert.is(store.list().length, 1);
    assert.equal((await store.verify({ checkContents: true })).problems, []);
  } finally {
    t.remove();
  }
});

test('SIGKILL at random points while adding never leaves a valid-looking incomplete path', async () => {
  const t = tempDir();
  try {
    const d = join(t.path, 'd');
    makeTrickyTree(d, { manyEntries: 1500, bigFileBytes: 8 * 1024 * 1024 });
    const cli = CLI_PATH;
    const root = join(t.path, 's');
    const { spawn } = await import('node:child_process');
    for (let round = 0; round < 8; round++) {
      const child = spawn('node', [cli, '--store', root, 'store', 'add', d], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 60 + Math.random() * 400));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('close', r));
      const store = new LocalStore({ root });
      // Whatever was left: anything valid verifies; and it is either nothing or the whole path.
      // Content moved in just before the kill, without its record, is an orphan (gc removes it).
      assert.equal((await store.verify({ checkContents: true })).problems.filter((p) => p.kind !== 'orphan'), [], `round ${round}`);
      await store.gc();
      if (store.list().length) {
        await store.delete(store.list().map((i) => i.path)); // start over to hit other points
      }
    }
    const out = (await runOk('node', [cli, '--store', root, 'store', 'add', d])).toString().trim();
    const store = new LocalStore({ root });
    assert.equal(store.list().map((i) => i.path), [out]);
    assert.equal((await store.verify({ checkContents: true })).problems, []);
    await store.gc();
    assert.equal(readdirSync(join(root, 'nix/var/fetch-image/tmp')), [], 'gc removes temp dirs of killed processes');
  } finally {
    t.remove();
  }
});

test.run();
