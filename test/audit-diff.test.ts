import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { diffPaths, renderDiff, renderDiffMarkdown, type DiffItem } from '../lib/audit/index.js';
import { havePeer } from './helpers/peers.js';
import { tempDir } from './helpers/tmp.js';

/** A tree to archive: name → content (a string is a file, null a directory). */
function writeTree(root: string, files: Record<string, string | null>): void {
  mkdirSync(root, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    const p = join(root, name);
    if (content === null) mkdirSync(p, { recursive: true });
    else {
      mkdirSync(join(p, '..'), { recursive: true });
      writeFileSync(p, content);
    }
  }
}

/** GNU tar, as nixpkgs' buildImage runs it. */
function gnuTar(dir: string, out: string, extra: string[] = []): void {
  execFileSync('tar', ['-C', dir, '--sort=name', '--mtime=@315532800', '--owner=0', '--group=0', '--numeric-owner', ...extra, '-cf', out, '.']);
}

const changed = (items: DiffItem[], name: string) => items.find((i): i is Extract<DiffItem, { kind: 'changed' }> => i.kind === 'changed' && i.name === name);

test('two layers made by GNU tar: changed, added and removed members with their fields and first differing byte', async () => {
  if (!havePeer('tar')) return;
  const t = tempDir();
  try {
    writeTree(join(t.path, 'a'), { 'etc/passwd': 'root:x:0:0::/root:/bin/sh\n', 'etc/motd': 'hello\n', 'bin/old': 'x' });
    writeTree(join(t.path, 'b'), { 'etc/passwd': 'root:x:0:0::/root:/bin/bash\n', 'etc/motd': 'hello\n', 'data/new': 'fresh' });
    chmodSync(join(t.path, 'b/etc/motd'), 0o600);
    gnuTar(join(t.path, 'a'), join(t.path, 'a.tar'));
    gnuTar(join(t.path, 'b'), join(t.path, 'b.tar'));
    const r = await diffPaths(join(t.path, 'a.tar'), join(t.path, 'b.tar'));
    assert.is(r.kind, 'tar');
    assert.not.ok(r.identical);
    const passwd = changed(r.items, 'etc/passwd')!;
    assert.equal(passwd.fields.map((f) => f.field), ['size', 'sha256']);
    assert.is(passwd.firstDifferingOffset, 'root:x:0:0::/root:/bin/'.length);
    assert.equal(changed(r.items, 'etc/motd')!.fields, [{ field: 'mode', a: '0644', b: '0600' }]);
    assert.ok(r.items.some((i) => i.kind === 'removed' && i.name === 'bin/old'));
    assert.ok(r.items.some((i) => i.kind === 'added' && i.name === 'data/new'));
    assert.ok(r.items.some((i) => i.kind === 'added' && i.name === 'data'));
    const text = renderDiff(r);
    assert.match(text, /changed  etc\/passwd: size 26 → 28, sha256 [0-9a-f]{12}… → [0-9a-f]{12}…, first difference at byte 23/);
    assert.match(text, /removed  bin\/old \(File, 0644, 0:0, 1 bytes/);
    assert.match(renderDiffMarkdown(r, 'rebuild'), /^#### rebuild\n\n```\n--- /);
    // The same tree archived twice is identical; with another mtime only the mtimes differ.
    gnuTar(join(t.path, 'a'), join(t.path, 'a2.tar'));
    assert.ok((await diffPaths(join(t.path, 'a.tar'), join(t.path, 'a2.tar'))).identical);
    execFileSync('tar', ['-C', join(t.path, 'a'), '--sort=name', '--mtime=@1', '--owner=0', '--group=0', '-cf', join(t.path, 'a3.tar'), '.']);
    const m = await diffPaths(join(t.path, 'a.tar'), join(t.path, 'a3.tar'));
    assert.ok(m.items.every((i) => i.kind === 'changed' && i.fields.length === 1 && i.fields[0]!.field === 'mtime'));
  } finally {
    t.remove();
  }
});

test('an image archive: the layer inside and the config JSON are compared member by member; gzip is opened', async () => {
  if (!havePeer('tar') || !havePeer('gzip')) return;
  const t = tempDir();
  try {
    for (const side of ['a', 'b'] as const) {
      const root = join(t.path, `${side}-layer`);
      writeTree(root, { 'etc/build-date': side === 'a' ? 'Thu Dec  3 10:00:00 UTC 2026\n' : 'Fri Dec  4 10:00:00 UTC 2026\n', 'etc/os': 'same\n' });
      const img = join(t.path, `${side}-img`);
      mkdirSync(join(img, 'abc'), { recursive: true });
      gnuTar(root, join(img, 'abc/layer.tar'));
      const config = side === 'a'
        ? '{"architecture":"amd64","config":{"Env":["A=1","B=2"]},"os":"linux"}'
        : '{"os":"linux","config":{"Env":["A=1","B=3"]},"architecture":"amd64"}';
      writeFileSync(join(img, 'config.json'), config);
      writeFileSync(join(img, 'manifest.json'), side === 'a' ? '[{"Config":"config.json","Layers":["abc/layer.tar"]}]' : '[ {"Layers":["abc/layer.tar"], "Config":"config.json"} ]');
      gnuTar(img, join(t.path, `${side}.tar`));
      execFileSync('sh', ['-c', `gzip -n -c ${join(t.path, `${side}.tar`)} > ${join(t.path, `${side}.tar.gz`)}`]);
    }
    const r = await diffPaths(join(t.path, 'a.tar.gz'), join(t.path, 'b.tar.gz'));
    const layer = changed(r.items, 'abc/layer.tar')!;
    assert.ok(layer.inner, 'the layer is opened');
    const date = changed(layer.inner!.items, 'etc/build-date')!;
    assert.is(date.firstDifferingOffset, 0);
    assert.not.ok(changed(layer.inner!.items, 'etc/os'));
    const config = changed(r.items, 'config.json')!;
    assert.equal(config.inner?.json?.changes, [{ path: 'config.Env[1]', a: 'B=2', b: 'B=3' }]);
    const manifest = changed(r.items, 'manifest.json')!;
    assert.is(manifest.inner?.json?.orderingOnly, true);
    const text = renderDiff(r);
    assert.match(text, /JSON config\.Env\[1\]: "B=2" → "B=3"/);
    assert.match(text, /JSON: ordering or whitespace differences only/);
    assert.match(text, /changed  etc\/build-date: sha256 .* first difference at byte 0/);
  } finally {
    t.remove();
  }
});

test('two trees: per-file type, mode, content and link target; identical trees report identical', async () => {
  const t = tempDir();
  try {
    writeTree(join(t.path, 'a'), { 'bin/tool': '#!/bin/sh\necho a\n', 'share/doc': null, 'same': 'x' });
    writeTree(join(t.path, 'b'), { 'bin/tool': '#!/bin/sh\necho b\n', 'share/doc': 'now a file', 'same': 'x' });
    chmodSync(join(t.path, 'b/bin/tool'), 0o755);
    execFileSync('ln', ['-s', 'target-a', join(t.path, 'a/link')]);
    execFileSync('ln', ['-s', 'target-b', join(t.path, 'b/link')]);
    const r = await diffPaths(join(t.path, 'a'), join(t.path, 'b'));
    assert.is(r.kind, 'tree');
    assert.equal(changed(r.items, 'bin/tool')!.fields.map((f) => f.field), ['mode', 'sha256']);
    assert.is(changed(r.items, 'bin/tool')!.firstDifferingOffset, '#!/bin/sh\necho '.length);
    assert.equal(changed(r.items, 'link')!.fields, [{ field: 'linkname', a: 'target-a', b: 'target-b' }]);
    assert.equal(changed(r.items, 'share/doc')!.fields[0], { field: 'type', a: 'Directory', b: 'File' });
    assert.not.ok(changed(r.items, 'same'));
    mkdirSync(join(t.path, 'c'));
    copyFileSync(join(t.path, 'a/same'), join(t.path, 'c/same'));
    mkdirSync(join(t.path, 'd'));
    copyFileSync(join(t.path, 'a/same'), join(t.path, 'd/same'));
    assert.ok((await diffPaths(join(t.path, 'c'), join(t.path, 'd'))).identical);
  } finally {
    t.remove();
  }
});

test('two plain files: the first differing byte, also when one is a prefix of the other', async () => {
  const t = tempDir();
  try {
    writeFileSync(join(t.path, 'a'), Buffer.alloc(3 << 20, 7));
    const b = Buffer.alloc(3 << 20, 7);
    b[(2 << 20) + 5] = 8;
    writeFileSync(join(t.path, 'b'), b);
    writeFileSync(join(t.path, 'c'), Buffer.alloc(1 << 20, 7));
    assert.is((await diffPaths(join(t.path, 'a'), join(t.path, 'b'))).firstDifferingOffset, (2 << 20) + 5);
    assert.is((await diffPaths(join(t.path, 'a'), join(t.path, 'c'))).firstDifferingOffset, 1 << 20);
    assert.ok((await diffPaths(join(t.path, 'a'), join(t.path, 'a'))).identical);
  } finally {
    t.remove();
  }
});

test.run();
