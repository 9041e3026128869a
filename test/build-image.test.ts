import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync, lstatSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { baseImageInfo, writeImage, type ClosurePath, type ImageInput } from '../lib/build/index.js';
import { layerFromFile, writeDockerArchive, type ArchiveLayer } from '../lib/image/index.js';
import { havePeer } from './helpers/peers.js';
import { runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';

// writeImage against the real peers: GNU tar reads the layer, podman loads and mounts the image,
// skopeo inspects it, umoci unpacks the OCI layout.

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';
const STORE = '/nix/store';
const SDE = 315532800;

function fakeHash(name: string): string {
  const h = createHash('sha256').update(name).digest();
  let s = '';
  for (let i = 0; i < 32; i++) s += NIX32[h[i]! % 32];
  return s;
}

/** A store path made on disk under `realStore` with `files` (path → content; trailing '/' = dir; '->x' = symlink). */
function storePath(realStore: string, name: string, files: Record<string, string>): ClosurePath {
  const base = `${fakeHash(name)}-${name}`;
  const real = join(realStore, base);
  mkdirSync(real, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    const p = join(real, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    if (rel.endsWith('/')) mkdirSync(p, { recursive: true });
    else if (content.startsWith('->')) symlinkSync(content.slice(2), p);
    else {
      writeFileSync(p, content);
      chmodSync(p, rel.startsWith('bin/') ? 0o555 : 0o444);
    }
  }
  // Canonical store modes: directories 0555.
  const seal = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) seal(join(d, e.name));
    chmodSync(d, 0o555);
  };
  seal(real);
  return { storePath: `${STORE}/${base}`, realPath: real };
}

function input(out: string, over: Omit<Partial<ImageInput>, 'layer'> & { layer?: Partial<ImageInput['layer']> } = {}): ImageInput {
  const { layer, ...rest } = over;
  return {
    storeDir: STORE, name: 'test/img', tag: 'v1', config: null, architecture: 'amd64', created: '1970-01-01T00:00:01Z',
    compressor: 'none', format: 'docker-archive', out,
    ...rest,
    layer: { roots: [], keepContentsDirlinks: false, owner: { uid: 0, gid: 0 }, closure: [], sourceDateEpoch: SDE, ...layer },
  };
}

interface Header { name: string; mode: number; uid: number; gid: number; size: number; mtime: number; type: string; linkname: string; magic: string; uname: string; gname: string; devmajor: number; devminor: number; data: Buffer }

/** Every header of an uncompressed tar, parsed from its fields (prefix + name; a PAX `path` record applies to the next header). */
function headers(tar: Buffer): Header[] {
  const out: Header[] = [];
  let off = 0;
  let paxPath: string | undefined;
  const str = (b: Buffer, o: number, n: number) => { const f = b.subarray(o, o + n); const z = f.indexOf(0); return (z < 0 ? f : f.subarray(0, z)).toString('utf8'); };
  const oct = (b: Buffer, o: number, n: number) => parseInt(str(b, o, n) || '0', 8);
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const prefix = str(h, 345, 155);
    const size = oct(h, 124, 12);
    if (h[156] === 0x78) { // 'x'
      paxPath = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(tar.subarray(off + 512, off + 512 + size).toString('utf8'))?.[1];
      off += 512 + size + ((512 - (size % 512)) % 512);
      continue;
    }
    const name = paxPath ?? (prefix ? `${prefix}/` : '') + str(h, 0, 100);
    paxPath = undefined;
    out.push({
      name, mode: oct(h, 100, 8), uid: oct(h, 108, 8), gid: oct(h, 116, 8), size,
      mtime: oct(h, 136, 12), type: String.fromCharCode(h[156]!), linkname: str(h, 157, 100), magic: h.subarray(257, 265).toString('latin1'),
      uname: str(h, 265, 32), gname: str(h, 297, 32), devmajor: oct(h, 329, 8), devminor: oct(h, 337, 8),
      data: tar.subarray(off + 512, off + 512 + size),
    });
    off += 512 + size + ((512 - (size % 512)) % 512);
  }
  return out;
}

const podmanArgs = (dir: string) => ['--storage-driver', 'vfs', '--root', join(dir, 'proot'), '--runroot', join(dir, 'prun'), '--events-backend', 'none', '--cgroup-manager', 'cgroupfs'];

function layerOf(archive: Buffer, index = -1): Buffer {
  const members = headers(archive);
  const manifest = JSON.parse(members.find((m) => m.name === 'manifest.json')!.data.toString()) as { Layers: string[] }[];
  const name = manifest[0]!.Layers.at(index)!;
  return members.find((m) => m.name === name)!.data;
}

test('the layer tar, header by header: sorted names, SOURCE_DATE_EPOCH, owners, modes, no PAX; GNU tar lists it', async () => {
  const t = tempDir();
  try {
    const store = join(t.path, 'store');
    const hello = storePath(store, 'hello', { 'bin/hello': '#!/bin/sh\necho hello\n', 'share/doc/README': 'readme\n', 'bin/hi': '->hello' });
    const out = join(t.path, 'image.tar');
    const result = await writeImage(input(out, {
      layer: { roots: [{ dir: hello.realPath, label: 'copyToRoot[0]', storePath: hello.storePath }], closure: [hello], dedupeAgainst: [hello], owner: { uid: 0, gid: 0 } },
    }));
    assert.equal(result.added, [hello.storePath]);
    assert.equal(result.skipped, []);
    const layer = layerOf(readFileSync(out));
    assert.is(`sha256:${createHash('sha256').update(layer).digest('hex')}`, result.layerDiffId);
    const hs = headers(layer);
    const base = hello.storePath.slice(1);
    assert.equal(hs.map((h) => h.name), [
      'bin/', 'bin/hello', 'bin/hi', 'nix/', 'nix/store/', `${base}/`, `${base}/bin/`, `${base}/bin/hello`, `${base}/bin/hi`,
      `${base}/share/`, `${base}/share/doc/`, `${base}/share/doc/README`, 'share/', 'share/doc/', 'share/doc/README',
    ]);
    for (const h of hs) {
      assert.is(h.mtime, SDE, h.name);
      assert.is(h.uid, 0, h.name);
      assert.is(h.gid, 0, h.name);
      assert.is(h.uname, '', h.name);
      assert.is(h.gname, '', h.name);
      assert.is(h.magic, 'ustar\x0000', h.name);
      assert.ok(h.type !== 'x', `no PAX header: ${h.name}`);
    }
    const by = new Map(hs.map((h) => [h.name, h]));
    // Of each pair the first in the stream holds the bytes and the other links to it:
    // bin/ sorts before nix/, share/ after it.
    assert.is(by.get('bin/hello')!.type, '0');
    assert.is(by.get('bin/hello')!.size, 21);
    assert.is(by.get('bin/hello')!.mode, 0o555);
    assert.is(by.get(`${base}/bin/hello`)!.type, '1');
    assert.is(by.get(`${base}/bin/hello`)!.linkname, 'bin/hello');
    assert.is(by.get(`${base}/share/doc/README`)!.type, '0');
    assert.is(by.get(`${base}/share/doc/README`)!.size, 7);
    assert.is(by.get('share/doc/README')!.type, '1');
    assert.is(by.get('share/doc/README')!.linkname, `${base}/share/doc/README`);
    assert.is(by.get('share/doc/README')!.size, 0);
    assert.is(by.get('bin/hi')!.type, '2');
    assert.is(by.get('bin/hi')!.linkname, 'hello');
    assert.is(by.get('bin/hi')!.mode, 0o777);
    assert.is(by.get('nix/')!.mode, 0o555);
    assert.is(by.get('nix/store/')!.mode, 0o555);
    assert.is(by.get(`${base}/`)!.mode, 0o555);
    assert.is(by.get('share/doc/README')!.mode, 0o444);

    if (!havePeer('tar')) return;
    writeFileSync(join(t.path, 'layer.tar'), layer);
    const listing = (await runOk('tar', ['--numeric-owner', '--full-time', '-tvf', join(t.path, 'layer.tar')], { env: { ...process.env, TZ: 'UTC' } })).toString().trim().split('\n');
    assert.is(listing.length, hs.length);
    assert.match(listing[1]!, /^-r-xr-xr-x 0\/0 +21 1980-01-01 00:00:00 bin\/hello$/);
    assert.match(listing[2]!, /^lrwxrwxrwx 0\/0 +0 1980-01-01 00:00:00 bin\/hi -> hello$/);
    assert.match(listing[7]!, new RegExp(`^hr-xr-xr-x 0/0 +0 1980-01-01 00:00:00 ${base}/bin/hello link to bin/hello$`));
    assert.match(listing[3]!, /^dr-xr-xr-x 0\/0 +0 1980-01-01 00:00:00 nix\/$/);
  } finally {
    t.remove();
  }
});

test('entry order is GNU tar --sort=name order (per directory, by bytes), names and modes as GNU tar stores them', async () => {
  if (!havePeer('tar')) return;
  const t = tempDir();
  try {
    const root = join(t.path, 'root');
    for (const d of ['a', 'a-b', 'a.b', 'a/c', 'B', '_', 'z/ü', 'z/u', 'z/\u{1F600}', 'z/\uE000']) mkdirSync(join(root, d), { recursive: true });
    for (const f of ['a/c/file', 'a-b/x', 'a.b/y', 'ab', 'a0', 'z/ü/f', 'z/\uE000/g']) writeFileSync(join(root, f), f);
    chmodSync(join(root, 'ab'), 0o4755);
    const out = join(t.path, 'image.tar');
    await writeImage(input(out, { layer: { roots: [{ dir: root, label: 'root' }] } }));
    const ours = headers(layerOf(readFileSync(out)));
    const gnu = headers(await runOk('tar', ['-C', root, '--sort=name', '--format=ustar', '-cf', '-', '.'])).filter((h) => h.name !== './');
    assert.equal(ours.map((h) => h.name), gnu.map((h) => h.name.replace(/^\.\//, '')));
    assert.equal(ours.map((h) => [h.type, h.mode]), gnu.map((h) => [h.type, h.mode]));
  } finally {
    t.remove();
  }
});

test('hard-link dedupe: a 1 MiB file at the root and in its store path is stored once', async () => {
  const t = tempDir();
  try {
    const store = join(t.path, 'store');
    const big = createHash('sha512').update('seed').digest('hex').repeat(8192); // 1 MiB
    const data = storePath(store, 'data', { 'share/big': big });
    const out = join(t.path, 'image.tar');
    await writeImage(input(out, { layer: { roots: [{ dir: data.realPath, label: 'copyToRoot[0]', storePath: data.storePath }], closure: [data], dedupeAgainst: [data] } }));
    const layer = layerOf(readFileSync(out));
    assert.ok(layer.length < big.length + 64 * 1024, `layer ${layer.length} bytes holds the 1 MiB once`);
    // Without dedupeAgainst nixpkgs' behaviour (two copies) is what comes out.
    const out2 = join(t.path, 'image2.tar');
    await writeImage(input(out2, { layer: { roots: [{ dir: data.realPath, label: 'copyToRoot[0]', storePath: data.storePath }], closure: [data] } }));
    assert.ok(layerOf(readFileSync(out2)).length > 2 * big.length, 'two copies without dedupe');
    if (!havePeer('podman')) return;
    const podman = podmanArgs(t.path);
    await runOk('podman', [...podman, 'load', '-q', '-i', out]);
    const mnt = (await runOk('podman', [...podman, 'image', 'mount', 'test/img:v1'])).toString().trim();
    try {
      const atRoot = join(mnt, 'share/big');
      const inStore = join(mnt, data.storePath, 'share/big');
      assert.is(readFileSync(atRoot, 'utf8'), big);
      assert.is(statSync(atRoot).ino, statSync(inStore).ino, 'one file under two names');
    } finally {
      await runOk('podman', [...podman, 'image', 'unmount', 'test/img:v1']);
    }
  } finally {
    t.remove();
  }
});

test('uid/gid own the root entries only; a root file owned differently from its store copy is not linked to it', async () => {
  const t = tempDir();
  try {
    const store = join(t.path, 'store');
    const p = storePath(store, 'pkg', { 'etc/conf': 'conf' });
    const out = join(t.path, 'image.tar');
    await writeImage(input(out, { layer: { roots: [{ dir: p.realPath, label: 'r', storePath: p.storePath }], closure: [p], dedupeAgainst: [p], owner: { uid: 1000, gid: 100 } } }));
    const by = new Map(headers(layerOf(readFileSync(out))).map((h) => [h.name, h]));
    assert.equal([by.get('etc/')!.uid, by.get('etc/')!.gid, by.get('etc/conf')!.uid, by.get('etc/conf')!.gid], [1000, 100, 1000, 100]);
    const inStore = by.get(`${p.storePath.slice(1)}/etc/conf`)!;
    assert.equal([inStore.uid, inStore.gid, inStore.type], [0, 0, '0']);
    assert.is(by.get('etc/conf')!.type, '0', 'a hard link would give both names one owner');
  } finally {
    t.remove();
  }
});

test('merge: later roots win, directories merge, a file-vs-directory conflict names both roots', async () => {
  const t = tempDir();
  try {
    const a = join(t.path, 'a');
    const b = join(t.path, 'b');
    const c = join(t.path, 'c');
    mkdirSync(join(a, 'etc'), { recursive: true });
    writeFileSync(join(a, 'etc/x'), 'from a');
    writeFileSync(join(a, 'etc/only-a'), 'a');
    mkdirSync(join(b, 'etc'), { recursive: true });
    writeFileSync(join(b, 'etc/x'), 'from b');
    mkdirSync(join(c, 'etc/x'), { recursive: true });
    const out = join(t.path, 'image.tar');
    await writeImage(input(out, { layer: { roots: [{ dir: a, label: 'copyToRoot[0]' }, { dir: b, label: 'copyToRoot[1]' }] } }));
    const hs = headers(layerOf(readFileSync(out)));
    assert.equal(hs.map((h) => h.name), ['etc/', 'etc/only-a', 'etc/x']);
    assert.is(hs[2]!.data.toString(), 'from b');
    try {
      await writeImage(input(join(t.path, 'bad.tar'), { layer: { roots: [{ dir: a, label: 'copyToRoot[0]' }, { dir: c, label: 'copyToRoot[2]' }] } }));
      assert.unreachable('a conflict must fail');
    } catch (e) {
      assert.match((e as Error).message, /\/etc\/x: copyToRoot\[0\] has a file and copyToRoot\[2\] has a directory/);
    }
    assert.not.ok(existsSync(join(t.path, 'bad.tar')));
    assert.equal(readdirSync(t.path).sort(), ['a', 'b', 'c', 'image.tar']);
  } finally {
    t.remove();
  }
});

test('keepContentsDirlinks: false copies directory symlinks as directories (rsync -k), true keeps them and merges through (rsync -K)', async () => {
  const t = tempDir();
  try {
    const store = join(t.path, 'store');
    const hello = storePath(store, 'hello', { 'bin/hello': 'ELF', 'share/doc/README': 'readme' });
    const env = join(t.path, 'env'); // what buildEnv makes: symlinks into the store
    mkdirSync(join(env, 'bin'), { recursive: true });
    symlinkSync(`${hello.storePath}/share`, join(env, 'share'));
    symlinkSync(`${hello.storePath}/bin/hello`, join(env, 'bin/hello'));
    symlinkSync('usr/lib', join(env, 'lib'));
    symlinkSync('/etc', join(env, 'host-etc'));
    symlinkSync('../..', join(env, 'outside'));
    mkdirSync(join(env, 'usr/lib'), { recursive: true });
    writeFileSync(join(env, 'usr/lib/a'), 'a');
    const extra = join(t.path, 'extra');
    mkdirSync(join(extra, 'lib'), { recursive: true });
    writeFileSync(join(extra, 'lib/b'), 'b');
    const roots = [{ dir: env, label: 'copyToRoot[0]' }, { dir: extra, label: 'copyToRoot[1]' }];

    const copied = join(t.path, 'copied.tar');
    await writeImage(input(copied, { layer: { roots, closure: [hello], dedupeAgainst: [hello], keepContentsDirlinks: false } }));
    const c = new Map(headers(layerOf(readFileSync(copied))).map((h) => [h.name, h]));
    assert.is(c.get('share/')?.type, '5', 'the store symlink became a directory');
    assert.is(c.get('share/doc/README')?.type, '1', 'and its file is a link to the store copy (same bytes once)');
    assert.is(c.get('bin/hello')?.type, '2', 'a symlink to a file stays a symlink');
    assert.is(c.get('lib/')?.type, '5');
    assert.is(c.get('lib/a')?.data.toString(), 'a');
    assert.is(c.get('lib/b')?.data.toString(), 'b');
    assert.is(c.get('host-etc')?.type, '2', "this machine's /etc is not read");
    assert.is(c.get('outside')?.type, '2', 'nor what lies outside the source');

    const kept = join(t.path, 'kept.tar');
    await writeImage(input(kept, { layer: { roots, closure: [hello], keepContentsDirlinks: true } }));
    const k = new Map(headers(layerOf(readFileSync(kept))).map((h) => [h.name, h]));
    assert.is(k.get('share')?.type, '2');
    assert.is(k.get('share')?.linkname, `${hello.storePath}/share`);
    assert.is(k.get('lib')?.type, '2');
    assert.is(k.get('usr/lib/a')?.data.toString(), 'a');
    assert.is(k.get('usr/lib/b')?.data.toString(), 'b', 'the later directory went through the symlink');
    assert.not.ok(k.has('lib/b'));
  } finally {
    t.remove();
  }
});

test('only-new rule, runAsRoot-like upper dir (devices, FIFO, whiteout, owners kept); podman loads and mounts it, skopeo inspects it', async () => {
  const t = tempDir();
  try {
    const store = join(t.path, 'store');
    const A = storePath(store, 'liba', { 'lib/liba.so': 'A' });
    const B = storePath(store, 'app', { 'bin/app': '#!/bin/sh\n' });
    const baseRoot = join(t.path, 'base-root');
    mkdirSync(join(baseRoot, 'etc'), { recursive: true });
    writeFileSync(join(baseRoot, 'etc/gone'), 'hidden by the upper layer');
    writeFileSync(join(baseRoot, 'etc/kept'), 'kept');
    const baseOut = join(t.path, 'base.tar');
    await writeImage(input(baseOut, { name: 'test/base', tag: 'b', config: { Env: ['BASE=1', 'PATH=/bin'], Cmd: ['/base'] }, layer: { roots: [{ dir: baseRoot, label: 'base root' }], closure: [A] } }));
    const info = await baseImageInfo(baseOut);
    assert.equal([...info.storePaths], [A.storePath]);
    assert.is(info.diffIds.length, 1);
    assert.equal(info.repoTags, ['test/base:b']);

    const upper = join(t.path, 'upper');
    mkdirSync(join(upper, 'etc'), { recursive: true });
    mkdirSync(join(upper, 'dev'), { recursive: true });
    writeFileSync(join(upper, 'etc/.wh.gone'), '');
    writeFileSync(join(upper, 'etc/owned'), 'owned by 1234');
    await runOk('chown', ['1234:5678', join(upper, 'etc/owned')]);
    await runOk('mknod', ['-m', '0666', join(upper, 'dev/null2'), 'c', '1', '3']);
    await runOk('mkfifo', ['-m', '0600', join(upper, 'dev/pipe')]);
    const out = join(t.path, 'image.tar');
    const result = await writeImage(input(out, {
      base: { archive: baseOut }, config: { Env: ['NEW=2'], Cmd: ['/bin/app'], User: '1234' },
      layer: { roots: [{ dir: upper, label: 'upper dir' }], owner: 'keep', closure: [A, B] },
    }));
    assert.equal(result.added, [B.storePath]);
    assert.equal(result.skipped, [A.storePath]);
    const archive = readFileSync(out);
    const hs = headers(layerOf(archive));
    const by = new Map(hs.map((h) => [h.name, h]));
    assert.not.ok(hs.some((h) => h.name.includes('liba')), 'A is in the base: not in the new layer');
    assert.not.ok(by.has('nix/') || by.has('nix/store/'), 'the base has the store dirs');
    assert.ok(by.has(`${B.storePath.slice(1)}/bin/app`));
    assert.is(by.get('dev/null2')!.type, '3');
    assert.is(by.get('dev/null2')!.devmajor, 1);
    assert.is(by.get('dev/null2')!.devminor, 3);
    assert.is(by.get('dev/null2')!.mode, 0o666);
    assert.is(by.get('dev/pipe')!.type, '6');
    assert.is(by.get('dev/pipe')!.mode, 0o600);
    assert.is(by.get('etc/.wh.gone')!.type, '0');
    assert.is(by.get('etc/owned')!.uid, 1234);
    assert.is(by.get('etc/owned')!.gid, 5678);
    assert.is(by.get(`${B.storePath.slice(1)}/bin/app`)!.uid, 0);

    const config = JSON.parse(headers(archive).find((h) => /^[0-9a-f]{64}\.json$/.test(h.name))!.data.toString()) as { config: { Env: string[]; Cmd: string[] }; rootfs: { diff_ids: string[] }; history: unknown[] };
    assert.equal(config.config.Env, ['BASE=1', 'PATH=/bin', 'NEW=2']);
    assert.equal(config.config.Cmd, ['/bin/app']);
    assert.equal(config.rootfs.diff_ids, [...info.diffIds, result.layerDiffId]);
    assert.is(config.history.length, 2);

    if (havePeer('skopeo')) {
      const inspected = JSON.parse((await runOk('skopeo', ['inspect', `docker-archive:${out}`])).toString()) as { Layers: string[]; Env: string[] };
      assert.is(inspected.Layers.length, 2);
      assert.equal(inspected.Env, ['BASE=1', 'PATH=/bin', 'NEW=2']);
    }
    if (!havePeer('podman')) return;
    const podman = podmanArgs(t.path);
    await runOk('podman', [...podman, 'load', '-q', '-i', out]);
    const inspect = JSON.parse((await runOk('podman', [...podman, 'image', 'inspect', 'test/img:v1'])).toString()) as { Id: string; Config: { Cmd: string[]; Env: string[]; User: string } }[];
    assert.is(`sha256:${inspect[0]!.Id}`, result.configDigest);
    assert.equal(inspect[0]!.Config.Cmd, ['/bin/app']);
    assert.is(inspect[0]!.Config.User, '1234');
    const mnt = (await runOk('podman', [...podman, 'image', 'mount', 'test/img:v1'])).toString().trim();
    try {
      assert.is(readFileSync(join(mnt, 'etc/kept'), 'utf8'), 'kept');
      assert.not.ok(existsSync(join(mnt, 'etc/gone')), 'the whiteout hides the base file');
      assert.not.ok(existsSync(join(mnt, 'etc/.wh.gone')));
      assert.is(readFileSync(join(mnt, A.storePath, 'lib/liba.so'), 'utf8'), 'A');
      assert.is(readFileSync(join(mnt, B.storePath, 'bin/app'), 'utf8'), '#!/bin/sh\n');
      const dev = lstatSync(join(mnt, 'dev/null2'));
      assert.ok(dev.isCharacterDevice());
      assert.is(dev.rdev, statSync('/dev/null').rdev);
      assert.ok(lstatSync(join(mnt, 'dev/pipe')).isFIFO());
      assert.is(lstatSync(join(mnt, 'etc/owned')).uid, 1234);
    } finally {
      await runOk('podman', [...podman, 'image', 'unmount', 'test/img:v1']);
    }
  } finally {
    t.remove();
  }
});

test('a skopeo-layout base (layers as <hex>.tar, <id>/layer.tar symlinks): only-new honours a later layer\'s whiteout of a store path; podman mounts the result', async () => {
  const t = tempDir();
  try {
    const store = join(t.path, 'store');
    const A = storePath(store, 'liba', { 'lib/a': 'A' });
    const C = storePath(store, 'libc', { 'lib/c': 'C' });
    const l1 = join(t.path, 'l1');
    mkdirSync(join(l1, 'etc'), { recursive: true });
    writeFileSync(join(l1, 'etc/os'), 'base os');
    await runOk('cp', ['-a', A.realPath, C.realPath, join(l1, 'etc')]);
    mkdirSync(join(l1, 'nix/store'), { recursive: true });
    await runOk('mv', [join(l1, 'etc', A.storePath.slice(11)), join(l1, 'etc', C.storePath.slice(11)), join(l1, 'nix/store')]);
    const l2 = join(t.path, 'l2');
    mkdirSync(join(l2, 'nix/store'), { recursive: true });
    writeFileSync(join(l2, 'nix/store', `.wh.${A.storePath.slice(11)}`), '');
    const layers: ArchiveLayer[] = [];
    for (const [i, dir] of [l1, l2].entries()) {
      const tar = join(t.path, `layer${i}.tar`);
      await runOk('tar', ['-C', dir, '--sort=name', '-cf', tar, '.']);
      layers.push(await layerFromFile(tar, `sha256:${createHash('sha256').update(readFileSync(tar)).digest('hex')}`));
    }
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/usr/bin'], Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }));
    const baseOut = join(t.path, 'base.tar');
    await writeDockerArchive(baseOut, { config, layers, repoTags: [{ name: 'docker.io/library/base', tag: 'x' }] });
    const info = await baseImageInfo(baseOut);
    assert.equal([...info.storePaths], [C.storePath], 'A was whited out by the second layer');
    assert.equal(info.repoTags, ['docker.io/library/base:x']);

    const out = join(t.path, 'image.tar');
    const result = await writeImage(input(out, { base: { archive: baseOut }, layer: { closure: [A, C] } }));
    assert.equal(result.added, [A.storePath]);
    assert.equal(result.skipped, [C.storePath]);
    const archive = headers(readFileSync(out));
    const names = archive.map((h) => h.name);
    for (const l of layers) assert.ok(names.includes(`${l.diffId.slice(7)}.tar`), 'base layer kept under its name');
    const baseLayer = archive.find((h) => h.name === `${layers[0]!.diffId.slice(7)}.tar`)!;
    assert.ok(baseLayer.data.equals(readFileSync(join(t.path, 'layer0.tar'))), 'base layer bytes copied as they are');
    assert.ok(archive.some((h) => h.type === '2' && h.name.endsWith('/layer.tar')), 'the base\'s <id>/layer.tar symlinks kept');
    for (const h of archive) {
      assert.is(h.mtime, SDE, h.name);
      if (h.type !== '2') assert.is(h.mode & 0o222, 0, `${h.name} has no write bits`);
    }
    if (!havePeer('podman')) return;
    const podman = podmanArgs(t.path);
    await runOk('podman', [...podman, 'load', '-q', '-i', out]);
    const mnt = (await runOk('podman', [...podman, 'image', 'mount', 'test/img:v1'])).toString().trim();
    try {
      assert.is(readFileSync(join(mnt, 'etc/os'), 'utf8'), 'base os');
      assert.is(readFileSync(join(mnt, A.storePath, 'lib/a'), 'utf8'), 'A');
      assert.is(readFileSync(join(mnt, C.storePath, 'lib/c'), 'utf8'), 'C');
    } finally {
      await runOk('podman', [...podman, 'image', 'unmount', 'test/img:v1']);
    }
  } finally {
    t.remove();
  }
});

test('gz and zstd outputs are byte-stable and decompress to the compressor-none archive', async () => {
  const t = tempDir();
  try {
    const store = join(t.path, 'store');
    const p = storePath(store, 'pkg', { 'bin/x': 'x'.repeat(100_000), 'etc/y': 'y', 'share/random': createHash('sha512').update('r').digest('base64').repeat(100_000) });
    const make = async (compressor: ImageInput['compressor'], out: string) => {
      await writeImage(input(join(t.path, out), { compressor, layer: { roots: [{ dir: p.realPath, label: 'r', storePath: p.storePath }], closure: [p], dedupeAgainst: [p] } }));
      return readFileSync(join(t.path, out));
    };
    const none = await make('none', 'none.tar');
    const gz1 = await make('gz', 'a.tar.gz');
    const gz2 = await make('gz', 'b.tar.gz');
    assert.ok(gz1.equals(gz2), 'gzip: identical bytes');
    assert.is(gz1[3], 0, 'gzip: no FNAME flag');
    assert.is(gz1.readUInt32LE(4), 0, 'gzip: mtime 0');
    assert.ok(gunzipSync(gz1).equals(none));
    if (havePeer('gzip')) assert.ok((await runOk('gzip', ['-dc', join(t.path, 'a.tar.gz')])).equals(none), 'GNU gzip reads it as one stream');
    const zs1 = await make('zstd', 'a.tar.zst');
    const zs2 = await make('zstd', 'b.tar.zst');
    assert.ok(zs1.equals(zs2), 'zstd: identical bytes');
    if (havePeer('zstd')) {
      const dec = await runOk('zstd', ['-dc', join(t.path, 'a.tar.zst')]);
      assert.ok(dec.equals(none));
    }
  } finally {
    t.remove();
  }
});

test("format 'oci': umoci unpacks the layout (base layers + the new one)", async () => {
  const t = tempDir();
  try {
    const store = join(t.path, 'store');
    const A = storePath(store, 'liba', { 'lib/liba.so': 'A' });
    const baseRoot = join(t.path, 'base-root');
    mkdirSync(join(baseRoot, 'etc'), { recursive: true });
    writeFileSync(join(baseRoot, 'etc/base'), 'base');
    const baseOut = join(t.path, 'base.tar.gz');
    await writeImage(input(baseOut, { compressor: 'gz', layer: { roots: [{ dir: baseRoot, label: 'base root' }] } }));
    const root = join(t.path, 'root');
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc/new'), 'new');
    const out = join(t.path, 'oci');
    await writeImage(input(out, { format: 'oci', compressor: 'gz', base: { archive: baseOut }, config: { Cmd: ['/x'] }, layer: { roots: [{ dir: root, label: 'root' }], closure: [A] } }));
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: { annotations: Record<string, string> }[] };
    assert.is(index.manifests[0]!.annotations['org.opencontainers.image.ref.name'], 'v1');
    if (!havePeer('umoci')) return;
    const bundle = join(t.path, 'bundle');
    await runOk('umoci', ['unpack', '--image', `${out}:v1`, bundle]);
    assert.is(readFileSync(join(bundle, 'rootfs/etc/base'), 'utf8'), 'base');
    assert.is(readFileSync(join(bundle, 'rootfs/etc/new'), 'utf8'), 'new');
    assert.is(readFileSync(join(bundle, 'rootfs', A.storePath, 'lib/liba.so'), 'utf8'), 'A');
  } finally {
    t.remove();
  }
});

test.run();
