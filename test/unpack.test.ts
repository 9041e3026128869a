import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { fileURLToPath } from 'node:url';
import { paxRecord } from '../lib/image/index.js';
import { hashPath } from '../lib/nar/index.js';
import { CorruptArchiveError, RefusedEntryError, TopLevelError, UnsupportedArchiveError, unpackArchive } from '../lib/unpack/index.js';
import { rejects } from './helpers/assert.js';
import { havePeer } from './helpers/peers.js';
import { run, runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';

const b = (...parts: (string | Buffer)[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
const LATIN1_NAME = Buffer.from([0xe9, 0x74, 0xe9]); // "été" in Latin-1: not UTF-8

/** A small tree with every kind of thing an archive carries, under `root/pkg`. */
function makeSourceTree(root: string): void {
  const R = Buffer.from(join(root, 'pkg'));
  const file = (rel: string | Buffer, content: string | Buffer, mode = 0o644): void => {
    const p = b(R, '/', rel);
    writeFileSync(p, content);
    chmodSync(p, mode);
  };
  const dir = (rel: string): void => void mkdirSync(b(R, '/', rel), { recursive: true });
  dir('bin');
  dir('lib');
  dir('share/empty-dir');
  dir('names');
  file('README', 'hello\n');
  file('bin/run', '#!/bin/sh\necho hi\n', 0o755);
  file('bin/owner-only-x', 'x\n', 0o700);
  file('bin/group-x-only', 'x\n', 0o654);
  file('lib/libfoo.so.1', 'ELF-ish\n');
  symlinkSync('libfoo.so.1', b(R, '/lib/libfoo.so'));
  symlinkSync('../README', b(R, '/lib/readme-link'));
  symlinkSync('lib', b(R, '/dirlink'));
  symlinkSync('does/not/exist', b(R, '/dangling'));
  file('empty-file', '');
  linkSync(b(R, '/README'), b(R, '/hard-readme'));
  file(b('names/', LATIN1_NAME), 'latin-1 name\n');
  file('names/日本語', 'utf-8 name\n');
  file('names/with space', 'space\n');
  // Longer than tar's 100-byte name field, with a component too long for the ustar prefix split.
  dir(`long/${'d'.repeat(60)}/${'e'.repeat(60)}`);
  file(`long/${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(120)}`, 'deep\n');
  const big = Buffer.alloc(1_500_001);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
  file('big.bin', big);
}

async function nar(path: string): Promise<string> {
  return (await hashPath(path)).hash.toString();
}

/** GNU tar's (or unzip's) extraction of `archive`, for comparison. */
async function referenceTree(archive: string, into: string, zip = false): Promise<void> {
  mkdirSync(into);
  if (zip) await runOk('unzip', ['-q', archive, '-d', into]);
  else await runOk('tar', ['-x', '-f', archive, '-C', into]);
}

for (const { format, tarFormat, compress } of [
  { format: 'tar', tarFormat: 'gnu', compress: null },
  { format: 'tar.gz', tarFormat: 'posix', compress: ['gzip', '-c'] },
  { format: 'tar.xz', tarFormat: 'gnu', compress: ['xz', '-c', '-T1'] },
  { format: 'tar.zst', tarFormat: 'posix', compress: ['zstd', '-q', '-c'] },
] as const) {
  test(`${format} (${tarFormat} headers): the unpacked tree is byte-identical to GNU tar's`, async () => {
    if (compress && !havePeer(compress[0])) return;
    const t = tempDir();
    try {
      makeSourceTree(join(t.path, 'src'));
      const tarPath = join(t.path, 'a.tar');
      await runOk('tar', [`--format=${tarFormat}`, '-C', join(t.path, 'src'), '-cf', tarPath, 'pkg']);
      let archive = tarPath;
      if (compress) {
        archive = join(t.path, `a.${format}`);
        writeFileSync(archive, await runOk(compress[0], [...compress.slice(1), tarPath]));
      }
      const out = join(t.path, 'out');
      const r = await unpackArchive(archive, out);
      assert.is(r.format, format);
      assert.ok(r.entries >= 20, `entries: ${r.entries}`);
      await referenceTree(archive, join(t.path, 'ref'));
      assert.is(await nar(out), await nar(join(t.path, 'ref', 'pkg')));
      assert.is(await nar(out), await nar(join(t.path, 'src', 'pkg')));
      // Spot checks of what the hash covers.
      assert.ok(existsSync(b(out, '/names/', LATIN1_NAME)), 'a non-UTF-8 name survives as bytes');
      assert.is(lstatSync(join(out, 'bin/run')).mode & 0o777, 0o755);
      assert.is(lstatSync(join(out, 'bin/group-x-only')).mode & 0o777, 0o644);
      assert.is(lstatSync(join(out, 'README')).mode & 0o777, 0o644);
      assert.is(readlinkSync(join(out, 'lib/libfoo.so')), 'libfoo.so.1');
      assert.is(lstatSync(out).mode & 0o777, 0o755);
      assert.equal(readdirSync(t.path).sort(), ['a.tar', ...(compress ? [`a.${format}`] : []), 'out', 'ref', 'src'].sort(), 'no temp dir left behind');
    } finally {
      t.remove();
    }
  });
}

test('v7, oldgnu and ustar headers (no magic, old GNU, POSIX prefix) agree with GNU tar', async () => {
  const t = tempDir();
  try {
    const src = join(t.path, 'src', 'pkg');
    mkdirSync(join(src, 'd'), { recursive: true });
    writeFileSync(join(src, 'a'), 'a\n');
    writeFileSync(join(src, 'd', 'x'), 'x\n');
    chmodSync(join(src, 'd', 'x'), 0o755);
    symlinkSync('a', join(src, 'l'));
    linkSync(join(src, 'a'), join(src, 'h'));
    // ustar splits a long name between its prefix and name fields.
    mkdirSync(join(src, 'p'.repeat(90)));
    writeFileSync(join(src, 'p'.repeat(90), 'n'.repeat(60)), 'split\n');
    for (const format of ['v7', 'oldgnu', 'ustar']) {
      const archive = join(t.path, `${format}.tar`);
      const members = format === 'v7' ? ['pkg/a', 'pkg/d', 'pkg/l', 'pkg/h'] : ['pkg'];
      await runOk('tar', [`--format=${format}`, '-C', join(t.path, 'src'), '-cf', archive, ...members]);
      await unpackArchive(archive, join(t.path, `out-${format}`));
      await referenceTree(archive, join(t.path, `ref-${format}`));
      assert.is(await nar(join(t.path, `out-${format}`)), await nar(join(t.path, `ref-${format}`, 'pkg')), format);
    }
  } finally {
    t.remove();
  }
});

test('zip (Info-ZIP zip -y): the unpacked tree is byte-identical to unzip\'s', async () => {
  if (!havePeer('zip') || !havePeer('unzip')) return;
  const t = tempDir();
  try {
    makeSourceTree(join(t.path, 'src'));
    const archive = join(t.path, 'a.zip');
    await runOk('zip', ['-q', '-r', '-y', archive, 'pkg'], { cwd: join(t.path, 'src') });
    const out = join(t.path, 'out');
    const r = await unpackArchive(archive, out);
    assert.is(r.format, 'zip');
    await referenceTree(archive, join(t.path, 'ref'), true);
    assert.is(await nar(out), await nar(join(t.path, 'ref', 'pkg')));
    assert.is(readlinkSync(join(out, 'dirlink')), 'lib');
    assert.is(lstatSync(join(out, 'bin/owner-only-x')).mode & 0o777, 0o755);
  } finally {
    t.remove();
  }
});

test('zip written by python3 zipfile: Unix modes, symlinks and directories as unzip sees them', async () => {
  if (!havePeer('python3') || !havePeer('unzip')) return;
  const t = tempDir();
  try {
    const archive = join(t.path, 'a.zip');
    await runOk('python3', ['-c', `
import sys, zipfile
def info(name, mode):
    i = zipfile.ZipInfo(name)
    i.create_system = 3
    i.external_attr = mode << 16
    return i
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr(info('top/', 0o40755), b'')
    z.writestr(info('top/tool', 0o100755), b'#!/bin/sh\\n' * 1000)
    z.writestr(info('top/data', 0o100600), b'data\\n')
    z.writestr(info('top/sub/deep', 0o100644), b'deep\\n')
    z.writestr(info('top/link', 0o120777), b'sub/deep')
    z.writestr('top/plain', b'no unix attributes\\n')
`, archive]);
    const out = join(t.path, 'out');
    await unpackArchive(archive, out);
    await referenceTree(archive, join(t.path, 'ref'), true);
    assert.is(await nar(out), await nar(join(t.path, 'ref', 'top')));
    assert.is(readlinkSync(join(out, 'link')), 'sub/deep');
    assert.is(lstatSync(join(out, 'tool')).mode & 0o777, 0o755);
  } finally {
    t.remove();
  }
});

// ---- hand-made tar archives ----

interface TarMember {
  name: string | Buffer;
  type?: string;
  data?: string | Buffer;
  linkname?: string;
  mode?: number;
}

/** A ustar archive built byte by byte, so that hostile members can be written at all. */
function tarArchive(members: TarMember[]): Buffer {
  const blocks: Buffer[] = [];
  for (const m of members) {
    // Only regular files and pax headers carry data (readers ignore the size of other types).
    const data = Buffer.from(['0', 'g', 'x'].includes(m.type ?? '0') ? m.data ?? '' : '');
    const h = Buffer.alloc(512);
    const put = (off: number, len: number, v: string | Buffer): void => void Buffer.from(v).copy(h, off, 0, len);
    const octal = (off: number, len: number, n: number): void => put(off, len, `${n.toString(8).padStart(len - 1, '0')}\0`);
    put(0, 100, m.name);
    octal(100, 8, m.mode ?? 0o644);
    octal(108, 8, 0);
    octal(116, 8, 0);
    octal(124, 12, data.length);
    octal(136, 12, 0);
    put(148, 8, '        ');
    put(156, 1, m.type ?? '0');
    put(157, 100, m.linkname ?? '');
    put(257, 8, 'ustar\x0000');
    put(265, 32, 'root');
    put(297, 32, 'root');
    let sum = 0;
    for (const byte of h) sum += byte;
    put(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/**
 * Unpacks `archive` (bytes) from a fresh directory and expects a refusal naming `entry`; then
 * checks that nothing was left: not the output, not a temp dir, not anything beside them.
 */
async function expectRefused(archive: Buffer, entry: string, reason: RegExp, opts: { zip?: boolean; name?: string } = {}): Promise<void> {
  const t = tempDir();
  try {
    const work = join(t.path, 'work');
    mkdirSync(work);
    const file = join(work, opts.name ?? (opts.zip ? 'a.zip' : 'a.tar'));
    writeFileSync(file, archive);
    const err = await rejects(() => unpackArchive(file, join(work, 'out')), reason);
    assert.instance(err, RefusedEntryError);
    assert.ok(err.message.startsWith(`refusing archive entry '${entry}': `), err.message);
    assert.not.match(err.message, /\n/);
    assert.equal(readdirSync(work), [opts.name ?? (opts.zip ? 'a.zip' : 'a.tar')], 'the output and temp dir are gone');
    assert.equal(readdirSync(t.path), ['work'], 'nothing was created outside');
  } finally {
    t.remove();
  }
}

const OUTSIDE = /it would land outside the output/;

test('hostile tar: names that climb out or are absolute', async () => {
  await expectRefused(tarArchive([{ name: 'pkg/' , type: '5' }, { name: '../x', data: 'evil' }]), '../x', OUTSIDE);
  await expectRefused(tarArchive([{ name: 'pkg/a/../../x', data: 'evil' }]), 'pkg/a/../../x', OUTSIDE);
  await expectRefused(tarArchive([{ name: 'pkg/../../x', type: '5' }]), 'pkg/../../x', OUTSIDE);
  const elsewhere = tempDir();
  try {
    const abs = join(elsewhere.path, 'abs'); // an absolute name that would be writable
    await expectRefused(tarArchive([{ name: abs, data: 'evil' }]), abs, OUTSIDE);
    assert.equal(readdirSync(elsewhere.path), []);
  } finally {
    elsewhere.remove();
  }
});

/** Unpacks `archive` and returns the output's symlinks (name → target): a link's target is only text. */
async function unpackedLinks(archive: Buffer, opts: { zip?: boolean } = {}): Promise<Record<string, string>> {
  const t = tempDir();
  try {
    const file = join(t.path, opts.zip ? 'a.zip' : 'a.tar');
    writeFileSync(file, archive);
    await unpackArchive(file, join(t.path, 'out'));
    const links: Record<string, string> = {};
    const walk = (dir: string, rel: string): void => {
      for (const n of readdirSync(dir).sort()) {
        const p = join(dir, n);
        if (lstatSync(p).isSymbolicLink()) links[rel + n] = readlinkSync(p);
        else if (lstatSync(p).isDirectory()) walk(p, `${rel}${n}/`);
      }
    };
    walk(join(t.path, 'out'), '');
    return links;
  } finally {
    t.remove();
  }
}

test('symlinks: any target is kept as text (as Nix and nix-prefetch-url --unpack do); nothing is written through one', async () => {
  // Absolute and climbing targets are only targets: kept verbatim.
  assert.equal(await unpackedLinks(tarArchive([{ name: 'pkg/root', type: '2', linkname: '/' }, { name: 'pkg/bin/sh', type: '2', linkname: '/usr/bin/dash' }])),
    { root: '/', 'bin/sh': '/usr/bin/dash' });
  assert.equal(await unpackedLinks(tarArchive([{ name: 'pkg/etc', type: '2', linkname: '../../etc' }, { name: 'pkg/b', type: '2', linkname: 'b/../../a' }])),
    { b: 'b/../../a', etc: '../../etc' });
  // A later member written through a link is refused, whether the link points out or stays inside.
  await expectRefused(tarArchive([{ name: 'pkg/root', type: '2', linkname: '/' }, { name: 'pkg/root/tmp/evil', data: 'x' }]),
    'pkg/root/tmp/evil', /it would be written through the symlink 'pkg\/root'/);
  await expectRefused(tarArchive([{ name: 'pkg/up', type: '2', linkname: '../..' }, { name: 'pkg/up/evil/', type: '5' }]),
    'pkg/up/evil/', /it would be written through the symlink 'pkg\/up'/);
  await expectRefused(tarArchive([{ name: 'pkg/sub/', type: '5' }, { name: 'pkg/in', type: '2', linkname: 'sub' }, { name: 'pkg/in/evil', data: 'x' }]),
    'pkg/in/evil', /it would be written through the symlink 'pkg\/in'/);
});

test('hostile tar: hard links out, device nodes, FIFOs', async () => {
  await expectRefused(tarArchive([{ name: 'pkg/passwd', type: '1', linkname: '/etc/passwd' }]), 'pkg/passwd', /hard link target '\/etc\/passwd' is outside the output/);
  await expectRefused(tarArchive([{ name: 'pkg/up', type: '1', linkname: '../x' }]), 'pkg/up', /is outside the output/);
  await expectRefused(tarArchive([{ name: 'pkg/dir/', type: '5' }, { name: 'pkg/l', type: '2', linkname: 'dir' }, { name: 'pkg/h', type: '1', linkname: 'pkg/l/x' }]),
    'pkg/h', /reached through the symlink 'pkg\/l'/);
  await expectRefused(tarArchive([{ name: 'pkg/h', type: '1', linkname: 'pkg/later' }, { name: 'pkg/later', data: 'x' }]), 'pkg/h', /was not extracted before it/);
  await expectRefused(tarArchive([{ name: 'dev/null', type: '3' }]), 'dev/null', /device nodes are not allowed/);
  await expectRefused(tarArchive([{ name: 'dev/sda', type: '4' }]), 'dev/sda', /device nodes are not allowed/);
  await expectRefused(tarArchive([{ name: 'pkg/fifo', type: '6' }]), 'pkg/fifo', /FIFOs are not allowed/);
});

test('hostile zip: zip-slip names and symlinks', async () => {
  if (!havePeer('python3')) return;
  const t = tempDir();
  try {
    const make = async (script: string): Promise<Buffer> => {
      const p = join(t.path, 'z.zip');
      await runOk('python3', ['-c', `import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1], 'w')\n${script}\nz.close()`, p]);
      return readFileSync(p);
    };
    const link = (name: string, target: string): string =>
      `i = zipfile.ZipInfo(${JSON.stringify(name)}); i.create_system = 3; i.external_attr = 0o120777 << 16; z.writestr(i, ${JSON.stringify(target)})`;
    await expectRefused(await make(`z.writestr('pkg/ok', 'fine')\nz.writestr('../evil', 'evil')`), '../evil', OUTSIDE, { zip: true });
    await expectRefused(await make(`z.writestr('/tmp/evil', 'evil')`), '/tmp/evil', OUTSIDE, { zip: true });
    assert.equal(await unpackedLinks(await make(link('pkg/l', '/etc/passwd')), { zip: true }), { l: '/etc/passwd' });
    await expectRefused(await make(`${link('pkg/l', 'sub')}\nz.writestr('pkg/sub/', '')\nz.writestr('pkg/l/evil', 'x')`), 'pkg/l/evil', /written through the symlink 'pkg\/l'/, { zip: true });
    await expectRefused(await make(`i = zipfile.ZipInfo('pkg/fifo'); i.create_system = 3; i.external_attr = 0o010644 << 16; z.writestr(i, '')`), 'pkg/fifo', /FIFOs are not allowed/, { zip: true });
  } finally {
    t.remove();
  }
});

test('property: whatever the members, nothing lands outside the output', async () => {
  const t = tempDir();
  try {
    // Deep enough that no combination of the generated `..`s can climb out of the temp dir.
    const box = join(t.path, 'l1/l2/l3/l4/l5/l6/box');
    const comps = (up: number): fc.Arbitrary<string> =>
      fc.array(fc.oneof({ arbitrary: fc.constantFrom('a', 'b', 'pkg', '.', ''), weight: 20 - up }, { arbitrary: fc.constant('..'), weight: up }), { minLength: 1, maxLength: 4 })
        .map((cs) => cs.join('/'));
    // Absolute names and targets point into the temp dir, never at the real root.
    const absOr = (rel: fc.Arbitrary<string>, weight: number): fc.Arbitrary<string> =>
      fc.oneof({ arbitrary: rel, weight: 20 - weight }, { arbitrary: rel.map((p) => `${t.path}/${p}`), weight });
    // Mostly plausible members below pkg/, with a hostile one now and then.
    const name = fc.oneof({ arbitrary: comps(0).map((p) => `pkg/${p}`), weight: 19 }, { arbitrary: absOr(comps(6), 6), weight: 1 });
    const target = absOr(comps(5), 1);
    const member = fc.record({
      name,
      type: fc.oneof({ arbitrary: fc.constantFrom('0', '0', '5', '2', '2', '1'), weight: 40 }, { arbitrary: fc.constant('6'), weight: 1 }),
      linkname: target,
      data: fc.constantFrom('', 'x', 'hello\n'),
      mode: fc.constantFrom(0o644, 0o755),
    });
    let runs = 0;
    let successes = 0;
    await fc.assert(fc.asyncProperty(fc.array(member, { minLength: 1, maxLength: 8 }), fc.boolean(), async (members, strip) => {
      const work = join(box, String(runs++));
      mkdirSync(work, { recursive: true });
      writeFileSync(join(work, 'a.tar'), tarArchive(members));
      const out = join(work, 'out');
      let ok = true;
      try {
        await unpackArchive(join(work, 'a.tar'), out, { stripOneTopLevel: strip });
        successes++;
      } catch (e) {
        ok = false;
        assert.ok(e instanceof RefusedEntryError || e instanceof TopLevelError || e instanceof CorruptArchiveError, String(e));
      }
      // Nothing anywhere in the temp dir but the scaffolding, the archive and the output.
      const seen: string[] = [];
      const walk = (dir: string): void => {
        for (const n of readdirSync(dir)) {
          const p = join(dir, n);
          seen.push(p);
          if (lstatSync(p).isDirectory()) walk(p);
        }
      };
      walk(t.path);
      const allowed = (p: string): boolean => box.startsWith(p + '/') || p === box || p === work || (p.startsWith(box + '/') && !p.startsWith(work)) ||
        p === join(work, 'a.tar') || (ok && (p === out || p.startsWith(out + '/')));
      for (const p of seen) assert.ok(allowed(p), `unexpected ${p} for ${JSON.stringify(members)}`);
    }), { numRuns: 150 });
    assert.ok(successes > 10, `only ${successes} of ${runs} archives unpacked: the generator is too hostile to test much`);
  } finally {
    t.remove();
  }
});

test('repeated names: files are replaced as GNU tar does, never written through a symlink', async () => {
  const t = tempDir();
  try {
    const victim = join(t.path, 'victim');
    writeFileSync(victim, 'untouched\n');
    const archive = join(t.path, 'a.tar');
    writeFileSync(archive, tarArchive([
      { name: 'pkg/', type: '5' },
      { name: 'pkg/f', data: 'first\n' },
      { name: 'pkg/h', type: '1', linkname: 'pkg/f' },
      { name: 'pkg/f', data: 'second\n', mode: 0o755 },
      { name: 'pkg/s', type: '2', linkname: 'f' },
      { name: 'pkg/s', data: 'a file now\n' },
      { name: 'pkg/d/', type: '5' },
      { name: 'pkg/d/', type: '5' },
    ]));
    const out = join(t.path, 'out');
    await unpackArchive(archive, out);
    assert.is(readFileSync(join(out, 'f'), 'utf8'), 'second\n');
    assert.is(readFileSync(join(out, 'h'), 'utf8'), 'first\n', 'the hard link keeps the replaced file');
    assert.ok(lstatSync(join(out, 's')).isFile());
    assert.is(readFileSync(victim, 'utf8'), 'untouched\n');
    await referenceTree(archive, join(t.path, 'ref'));
    assert.is(await nar(out), await nar(join(t.path, 'ref', 'pkg')));

    // A symlink replaced by a file must not carry the write to its target.
    const archive2 = join(t.path, 'b.tar');
    writeFileSync(archive2, tarArchive([{ name: 'pkg/t', data: 'target\n' }, { name: 'pkg/l', type: '2', linkname: 't' }, { name: 'pkg/l', data: 'new\n' }]));
    await unpackArchive(archive2, join(t.path, 'out2'));
    assert.is(readFileSync(join(t.path, 'out2', 't'), 'utf8'), 'target\n');
    assert.is(readFileSync(join(t.path, 'out2', 'l'), 'utf8'), 'new\n');

    writeFileSync(archive, tarArchive([{ name: 'pkg/d/', type: '5' }, { name: 'pkg/d', data: 'x' }]));
    await rejects(() => unpackArchive(archive, join(t.path, 'out3')), /refusing archive entry 'pkg\/d': it would replace a directory/);
    assert.not.ok(existsSync(join(t.path, 'out3')));
  } finally {
    t.remove();
  }
});

test('a pax global header (g) gives its path, linkpath and size to every later member, a member\'s own x header wins: the tree GNU tar extracts', async () => {
  const t = tempDir();
  try {
    const p = (n: string): string => join(t.path, n);
    writeFileSync(p('g.tar'), tarArchive([
      { name: 'pkg/', type: '5' },
      { name: 'pax_global_header', type: 'g', data: paxRecord('path', 'pkg/glob') },
      { name: 'PaxHeaders/a', type: 'x', data: paxRecord('path', 'pkg/local') },
      { name: 'pkg/a.txt', data: 'aaa' },
      { name: 'pkg/b.txt', data: 'bbb' },
      { name: 'pax_global_header', type: 'g', data: Buffer.concat([paxRecord('path', 'pkg/l'), paxRecord('linkpath', 'glob')]) },
      { name: 'pkg/d.lnk', type: '2', linkname: 'orig' },
    ]));
    await unpackArchive(p('g.tar'), p('ours'));
    assert.equal(readdirSync(p('ours')).sort(), ['glob', 'l', 'local']);
    assert.is(readFileSync(p('ours/local'), 'utf8'), 'aaa');
    assert.is(readFileSync(p('ours/glob'), 'utf8'), 'bbb');
    assert.is(readlinkSync(p('ours/l')), 'glob');
    if (!havePeer('tar')) return;
    await referenceTree(p('g.tar'), p('gnu'));
    assert.is(await nar(p('ours')), await nar(p('gnu/pkg')), 'same tree as GNU tar');

    // A global size applies too (GNU tar reads one byte of this member, then the end).
    writeFileSync(p('size.tar'), tarArchive([
      { name: 'pkg/', type: '5' },
      { name: 'pax_global_header', type: 'g', data: paxRecord('size', '1') },
      { name: 'pkg/f', data: 'fff' },
    ]));
    await unpackArchive(p('size.tar'), p('ours-size'));
    await referenceTree(p('size.tar'), p('gnu-size'));
    assert.is(readFileSync(p('ours-size/f'), 'utf8'), 'f');
    assert.is(await nar(p('ours-size')), await nar(p('gnu-size/pkg')));
  } finally {
    t.remove();
  }
});

test('strip one top-level directory as fetchzip does', async () => {
  const t = tempDir();
  try {
    const p = (n: string): string => join(t.path, n);
    // Two top-level entries: an error with stripping, the whole tree without.
    writeFileSync(p('two.tar'), tarArchive([{ name: 'a/', type: '5' }, { name: 'a/x', data: 'x' }, { name: 'b', data: 'b' }]));
    const err = await rejects(() => unpackArchive(p('two.tar'), p('o1')), /must contain a single top-level file or directory.*it has 2 \('a', 'b'\).*--no-strip-root/);
    assert.instance(err, TopLevelError);
    assert.not.ok(existsSync(p('o1')));
    const r = await unpackArchive(p('two.tar'), p('o2'), { stripOneTopLevel: false });
    assert.is(r.entries, 3);
    assert.equal(readdirSync(p('o2')).sort(), ['a', 'b']);
    assert.is(readFileSync(p('o2/a/x'), 'utf8'), 'x');

    // `tar -C dir .` style names: './' and './pkg/...' still have one top-level directory.
    writeFileSync(p('dot.tar'), tarArchive([{ name: './', type: '5' }, { name: './pkg/', type: '5' }, { name: './pkg/f', data: 'f' }]));
    await unpackArchive(p('dot.tar'), p('o3'));
    assert.equal(readdirSync(p('o3')), ['f']);

    // A single top-level file stays wrapped in the output directory (fetchzip: mkdir $out; mv).
    writeFileSync(p('one.tar'), tarArchive([{ name: 'only.txt', data: 'only' }]));
    await unpackArchive(p('one.tar'), p('o4'));
    assert.equal(readdirSync(p('o4')), ['only.txt']);

    // No entries at all: nothing to strip.
    writeFileSync(p('empty.tar'), tarArchive([{ name: './', type: '5' }]));
    await rejects(() => unpackArchive(p('empty.tar'), p('o5')), /it has 0;/);
    await unpackArchive(p('empty.tar'), p('o6'), { stripOneTopLevel: false });
    assert.equal(readdirSync(p('o6')), []);

    assert.equal(readdirSync(t.path).sort(), ['dot.tar', 'empty.tar', 'o2', 'o3', 'o4', 'o6', 'one.tar', 'two.tar']);
  } finally {
    t.remove();
  }
});

test('unsupported, corrupt and truncated archives; an existing output; abort', async () => {
  const t = tempDir();
  try {
    const p = (n: string): string => join(t.path, n);
    writeFileSync(p('random'), Buffer.from('this is not an archive at all, just text\n'.repeat(20)));
    await rejects(() => unpackArchive(p('random'), p('o')), /unsupported archive format: .* is not a tar/);
    writeFileSync(p('x.bz2'), Buffer.from('BZh91AY&SY\x01\x02 the start of a bzip2 stream'));
    const bz = await rejects(() => unpackArchive(p('x.bz2'), p('o')), /unsupported archive format: bzip2/);
    assert.instance(bz, UnsupportedArchiveError);

    // A gzip stream cut short inside a file's data.
    const tar = tarArchive([{ name: 'pkg/', type: '5' }, { name: 'pkg/big', data: Buffer.alloc(300_000, 7) }]);
    const gz = await runOk('gzip', ['-c', '-1'], { input: tar });
    writeFileSync(p('cut.tgz'), gz.subarray(0, gz.length - 20));
    const cut = await rejects(() => unpackArchive(p('cut.tgz'), p('o')), /cannot decompress the gz stream|truncated/);
    assert.instance(cut, CorruptArchiveError);
    // A plain tar cut inside a file's data.
    writeFileSync(p('cut.tar'), tar.subarray(0, 2048));
    await rejects(() => unpackArchive(p('cut.tar'), p('o')), /the archive is truncated/);
    // A damaged header after the first.
    const bad = Buffer.from(tar);
    bad[512 + 10] ^= 0xff;
    writeFileSync(p('bad.tar'), bad);
    await rejects(() => unpackArchive(p('bad.tar'), p('o')), /corrupt tar header at byte 512/);
    if (havePeer('xz')) {
      const xz = await runOk('xz', ['-c'], { input: tar });
      xz[Math.floor(xz.length / 2)] ^= 0x01;
      writeFileSync(p('bad.txz'), xz);
      await rejects(() => unpackArchive(p('bad.txz'), p('o')), /cannot decompress the xz stream/);
    }
    if (havePeer('python3')) {
      // A zip whose data was damaged after it was written: CRC-32 (or inflate) catches it.
      for (const method of ['ZIP_STORED', 'ZIP_DEFLATED']) {
        await runOk('python3', ['-c', `import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w', zipfile.${method}) as z: z.writestr('pkg/a', 'hello, zip world ' * 40)`, p('d.zip')]);
        const zip = readFileSync(p('d.zip'));
        zip[30 + 'pkg/a'.length + 5] ^= 0x20; // inside the entry's data, past its local header
        writeFileSync(p('d.zip'), zip);
        const err = await rejects(() => unpackArchive(p('d.zip'), p('o')), /zip entry 'pkg\/a'/);
        assert.instance(err, CorruptArchiveError);
        assert.not.ok(existsSync(p('o')));
      }
    }

    // The output must not exist, and is left alone when it does.
    writeFileSync(p('ok.tar'), tarArchive([{ name: 'pkg/f', data: 'f' }]));
    mkdirSync(p('exists'));
    writeFileSync(p('exists/keep'), 'keep');
    await rejects(() => unpackArchive(p('ok.tar'), p('exists')), /already exists/);
    assert.equal(readdirSync(p('exists')), ['keep']);

    const aborted = AbortSignal.abort();
    await rejects(() => unpackArchive(p('ok.tar'), p('o'), { signal: aborted }), /abort/i);
    assert.not.ok(existsSync(p('o')));
    const names = readdirSync(t.path).filter((n) => n.startsWith('.'));
    assert.equal(names, [], 'no temp dirs left');
  } finally {
    t.remove();
  }
});

test('sparse members in all four GNU encodings unpack with holes, byte-identical to GNU tar', async () => {
  if (!havePeer('python3')) return;
  const t = tempDir();
  try {
    const p = (n: string): string => join(t.path, n);
    mkdirSync(p('src/pkg'), { recursive: true });
    writeFileSync(p('src/pkg/plain'), 'plain\n');
    // 30 data regions in 8 MB of holes, and a hole at the end: more segments than one header holds.
    const holes = p('src/pkg/holes');
    writeFileSync(holes, '');
    await runOk('truncate', ['-s', '8M', holes]);
    await runOk('python3', ['-c', `import sys\nwith open(sys.argv[1], 'r+b') as f:\n    for i in range(30):\n        f.seek(i * 250000 + 7); f.write(b'data %d' % i)`, holes]);
    await runOk('truncate', ['-s', '9M', holes]);
    const source = await nar(p('src/pkg'));
    const formats = [['gnu', ['--format=gnu']], ['pax-1.0', ['--format=posix']], ['pax-0.1', ['--format=posix', '--sparse-version=0.1']], ['pax-0.0', ['--format=posix', '--sparse-version=0.0']]] as const;
    for (const [label, flags] of formats) {
      await runOk('tar', [...flags, '-S', '-C', p('src'), '-cf', p(`${label}.tar`), 'pkg']);
      await unpackArchive(p(`${label}.tar`), p(`out-${label}`));
      assert.is(await nar(p(`out-${label}`)), source, label);
      assert.ok(lstatSync(p(`out-${label}/holes`)).blocks * 512 < 1024 * 1024, `${label}: written with holes`);
    }
    await referenceTree(p('gnu.tar'), p('ref'));
    assert.is(await nar(p('ref/pkg')), source);

    // A map that claims more than the file's size is refused, not written past it.
    const bad = readFileSync(p('gnu.tar'));
    for (let off = 0; off < bad.length; off += 512) {
      if (bad[off + 156] !== 0x53) continue; // 'S'
      Buffer.from('00000000001\0').copy(bad, off + 483);
      Buffer.from('        ').copy(bad, off + 148);
      let sum = 0;
      for (let i = off; i < off + 512; i++) sum += bad[i] as number;
      Buffer.from(`${sum.toString(8).padStart(6, '0')}\0 `).copy(bad, off + 148);
    }
    writeFileSync(p('bad.tar'), bad);
    await rejects(() => unpackArchive(p('bad.tar'), p('o')), /corrupt sparse tar member: its segments overlap or pass its size/);
    assert.not.ok(existsSync(p('o')));
  } finally {
    t.remove();
  }
});

test('xz streams and zstd frames: concatenated ones decode, truncated ones fail', async () => {
  if (!havePeer('xz') || !havePeer('zstd')) return;
  const t = tempDir();
  try {
    const p = (n: string): string => join(t.path, n);
    const tar = tarArchive([{ name: 'pkg/', type: '5' }, { name: 'pkg/a', data: Buffer.alloc(100_000, 1) }, { name: 'pkg/b', data: 'b\n'.repeat(50_000) }]);
    const half = 60_000;
    for (const [ext, one, other] of [['txz', ['xz', '-c'], ['xz', '-c', '-C', 'sha256']], ['tzst', ['zstd', '-q', '-c'], ['zstd', '-q', '-c', '-19']]] as const) {
      const first = await runOk(one[0], one.slice(1), { input: tar.subarray(0, half) });
      const second = await runOk(other[0], other.slice(1), { input: tar.subarray(half) });
      writeFileSync(p(`two.${ext}`), Buffer.concat([first, second]));
      await unpackArchive(p(`two.${ext}`), p(`out-${ext}`));
      assert.is(readFileSync(p(`out-${ext}/b`), 'utf8'), 'b\n'.repeat(50_000));
      const whole = await runOk(one[0], one.slice(1), { input: tar });
      writeFileSync(p(`cut.${ext}`), whole.subarray(0, whole.length - 30));
      const err = await rejects(() => unpackArchive(p(`cut.${ext}`), p('o')), /cannot decompress the (xz|zst) stream: .*(truncated|EOF)/i);
      assert.instance(err, CorruptArchiveError);
      assert.not.ok(existsSync(p('o')));
    }
  } finally {
    t.remove();
  }
});

// Memory must not grow with the archive: peak RSS unpacking 200 MB of zeros is compared with
// unpacking 20 MB of them. (An absolute bound alone is noise on a loaded machine, where the
// collector lets garbage pile up; a size-proportional buffer would add ~180 MB here.)
test('200 MB of zeros unpack with flat memory from tar.gz, tar.xz, tar.zst and zip', async () => {
  const t = tempDir();
  try {
    const p = (n: string): string => join(t.path, n);
    const formats: [string, string[]][] = [['tgz', ['gzip', '-1', '-c']]];
    if (havePeer('xz')) formats.push(['txz', ['xz', '-0', '-T2', '-c']]);
    if (havePeer('zstd')) formats.push(['tzst', ['zstd', '-q', '-c']]);
    const withZip = havePeer('python3');
    for (const mb of [20, 200]) {
      mkdirSync(p(`src${mb}/pkg`), { recursive: true });
      writeFileSync(p(`src${mb}/pkg/small`), 'small\n');
      writeFileSync(p(`src${mb}/pkg/zeros`), '');
      await runOk('truncate', ['-s', String(mb * 1024 * 1024), p(`src${mb}/pkg/zeros`)]);
      // tar reads the holes as zeros (no -S), so the member carries the data. Zeros are the
      // worst case for a decoder that cannot pause: xz and zstd shrink them thousands of times.
      await runOk('tar', ['-C', p(`src${mb}`), '-cf', p(`big${mb}.tar`), 'pkg']);
      for (const [ext, cmd] of formats) {
        await runOk('sh', ['-c', 'in=$1 out=$2; shift 2; "$@" < "$in" > "$out"', 'sh', p(`big${mb}.tar`), p(`big${mb}.${ext}`), ...cmd]);
      }
      if (withZip) {
        await runOk('python3', ['-c', `
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[2], 'pkg/zeros')
`, p(`big${mb}.zip`), p(`src${mb}/pkg/zeros`)]);
      }
    }
    // A fresh process per archive, so each peak RSS is that unpack's alone.
    const index = fileURLToPath(new URL('../lib/unpack/index.js', import.meta.url));
    writeFileSync(p('child.mjs'), `
import { unpackArchive } from ${JSON.stringify(index)};
const r = await unpackArchive(process.argv[2], process.argv[3]);
console.log(JSON.stringify({ ...r, maxRssKiB: process.resourceUsage().maxRSS }));
`);
    const peakMiB = async (name: string, mb: number): Promise<number> => {
      const res = await run(process.execPath, [p('child.mjs'), p(name), p('out')]);
      assert.is(res.code, 0, res.stderr);
      assert.is(lstatSync(p('out/zeros')).size, mb * 1024 * 1024);
      await runOk('rm', ['-rf', p('out')]);
      return (JSON.parse(res.stdout.toString()) as { maxRssKiB: number }).maxRssKiB / 1024;
    };
    for (const ext of [...formats.map(([e]) => e), ...(withZip ? ['zip'] : [])]) {
      const small = await peakMiB(`big20.${ext}`, 20);
      const big = await peakMiB(`big200.${ext}`, 200);
      assert.ok(big - small < 64, `${ext}: peak RSS ${Math.round(big)} MiB for 200 MB vs ${Math.round(small)} MiB for 20 MB`);
      // Only a sanity bound: on a loaded machine the collector has let both runs reach ~340 MiB
      // (seen once in CI, against ~92 MiB normally); the comparison above is the real check.
      assert.ok(big < 512, `${ext}: peak RSS ${Math.round(big)} MiB`);
    }
  } finally {
    t.remove();
  }
});

test.run();
