// `fetch-image REF` end to end: the real registry, the real CLI, compared with skopeo's bytes
// (what nixpkgs pullImage / nix-prefetch-docker pin) and real Nix's store paths.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { Hash } from '../lib/hash/index.js';
import { LocalStore } from '../lib/store/index.js';
import { makeImage, makeIndex, pushImage, type ImageSpec } from '../store-fixtures/images/index.js';
import { havePeer } from './helpers/peers.js';
import { startRegistry } from './helpers/registry.js';
import { run, runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';
import { CLI_PATH } from './helpers/cli.js';

const CLI = CLI_PATH;
const peers = () => havePeer('docker-registry') && havePeer('skopeo') && havePeer('nix-store');
const env = { PATH: process.env.PATH, HOME: process.env.HOME };
const fi = (store: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}) => run('node', [CLI, '--store', store, ...args], { env: { ...env, ...extraEnv } });
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const TWO_LAYERS: ImageSpec = {
  layers: [
    { entries: [{ type: 'dir', path: 'etc' }, { type: 'file', path: 'etc/os-release', content: 'ID=fixture\n' }, { type: 'random', path: 'blob.bin', size: 300_000, seed: 7 }] },
    { entries: [{ type: 'file', path: 'bin/tool', content: '#!/bin/sh\necho hi\n', mode: 0o755 }, { type: 'symlink', path: 'bin/alias', target: 'tool' }] },
  ],
  runConfig: { Cmd: ['/bin/tool'] },
};

interface Pin { imageName: string; imageDigest: string; hash: string; sha256: string; finalImageName: string; finalImageTag: string; os: string; arch: string; storePath: string; path: string }

test('prefetch pin, archive bytes, store path: identical to skopeo + nix-store; offline second run; podman loads it', async () => {
  if (!peers()) return;
  const t = tempDir();
  const reg = await startRegistry();
  try {
    const built = await makeImage(join(t.path, 'layout'), TWO_LAYERS, 'v1');
    const digest = await pushImage(built.dir, reg.port, 'library/demo', '1.0', { sourceTag: 'v1' });
    const store = join(t.path, 's');
    const ref = `${reg.host}/library/demo:1.0`;

    const pre = await fi(store, ['--json', 'pull', '--tls-verify=false', ref]);
    assert.is(pre.code, 0, pre.stderr);
    const pin = JSON.parse(pre.stdout.toString()) as Pin;
    assert.is(pin.imageDigest, digest);
    assert.is(pin.imageName, `${reg.host}/library/demo`);
    assert.is(pin.finalImageTag, '1.0');
    assert.equal(Object.keys(pin).sort(), ['arch', 'finalImageName', 'finalImageTag', 'hash', 'imageDigest', 'imageName', 'os', 'path', 'sha256', 'storePath'].sort());

    // skopeo, exactly as nixpkgs pullImage runs it.
    const ref1 = join(t.path, 'skopeo.tar');
    await runOk('skopeo', ['--insecure-policy', 'copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/library/demo@${digest}`, `docker-archive:${ref1}:${pin.finalImageName}:${pin.finalImageTag}`]);
    const ours = readFileSync(pin.path);
    const theirs = readFileSync(ref1);
    assert.is(sha256(ours), sha256(theirs), 'archive bytes equal skopeo docker-archive');
    assert.is(pin.hash, Hash.of('sha256', theirs).sri);
    assert.is(pin.sha256, (await runOk('nix-hash', ['--type', 'sha256', '--flat', '--base32', ref1])).toString().trim());

    // The store path equals what Nix gives the same pullImage output (a flat fixed output with that name).
    const named = join(t.path, 'docker-image-' + `${pin.finalImageName}-${pin.finalImageTag}`.replace(/[/:]/g, '-') + '.tar');
    writeFileSync(named, theirs);
    const nixPath = (await runOk('nix-store', ['--store', `local?root=${join(t.path, 'nix')}`, '--add-fixed', 'sha256', named])).toString().trim();
    assert.is(pin.storePath, nixPath);

    // With the pin and the registry stopped: same path, no network needed.
    await reg.stop();
    const offline = await fi(store, [`${ref}`, '--sha256', pin.sha256]);
    assert.is(offline.code, 0, offline.stderr);
    assert.is(offline.stdout.toString().trim(), pin.storePath);
    assert.is(offline.stderr, '', 'nothing on stderr when piped');

    if (havePeer('podman')) {
      const podman = ['--storage-driver', 'vfs', '--root', join(t.path, 'proot'), '--runroot', join(t.path, 'prun')];
      await runOk('podman', [...podman, 'load', '-q', '-i', pin.path]);
      const images = (await runOk('podman', [...podman, 'images', '--format', '{{.Repository}}:{{.Tag}}'])).toString();
      assert.match(images, `${reg.host}/library/demo:1.0`);
    }
  } finally {
    await reg.stop().catch(() => undefined);
    t.remove();
  }
});

test('multi-arch index: each platform identical to skopeo --override-arch; imageDigest is the platform manifest', async () => {
  if (!peers()) return;
  const t = tempDir();
  const reg = await startRegistry();
  try {
    const base = { entries: [{ type: 'file' as const, path: 'common', content: 'shared\n' }] };
    const built = await makeIndex(join(t.path, 'layout'), {
      images: [
        { platform: { os: 'linux', architecture: 'amd64' }, layers: [base, { entries: [{ type: 'file', path: 'arch', content: 'amd64\n' }] }] },
        { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, layers: [base, { entries: [{ type: 'file', path: 'arch', content: 'arm64\n' }] }] },
      ],
    }, 'multi');
    const indexDigest = await pushImage(built.dir, reg.port, 'library/multi', 'multi', { sourceTag: 'multi' });
    const store = join(t.path, 's');
    for (const [i, arch] of [[0, 'amd64'], [1, 'arm64']] as const) {
      const r = await fi(store, ['--json', `${reg.host}/library/multi:multi`, '--tls-verify=false', '--arch', arch]);
      assert.is(r.code, 0, r.stderr);
      const pin = JSON.parse(r.stdout.toString()) as Pin & { indexDigest: string };
      assert.is(pin.imageDigest, built.images[i]!.digest, 'platform manifest digest, not the index (nixpkgs #283098)');
      assert.is(pin.indexDigest, indexDigest);
      assert.is(pin.arch, arch);
      const ref1 = join(t.path, `skopeo-${arch}.tar`);
      await runOk('skopeo', ['--insecure-policy', '--override-arch', arch, 'copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/library/multi@${indexDigest}`, `docker-archive:${ref1}:${pin.finalImageName}:${pin.finalImageTag}`]);
      assert.is(sha256(readFileSync(pin.path)), sha256(readFileSync(ref1)), `${arch} archive equals skopeo's`);
    }
    const none = await fi(store, [`${reg.host}/library/multi:multi`, '--tls-verify=false', '--arch', 's390x']);
    assert.is(none.code, 1);
    assert.match(none.stderr, /linux\/amd64/);
    assert.match(none.stderr, /linux\/arm64/);
  } finally {
    await reg.stop();
    t.remove();
  }
});

test('a second image sharing every layer copies it from the first archive; a damaged copy is refetched, never used', async () => {
  if (!peers()) return;
  const t = tempDir();
  const reg = await startRegistry();
  try {
    const built = await makeImage(join(t.path, 'layout'), TWO_LAYERS, 'v1');
    await pushImage(built.dir, reg.port, 'library/a', 'v1', { sourceTag: 'v1' });
    const other = await makeImage(join(t.path, 'layout2'), { ...TWO_LAYERS, runConfig: { Cmd: ['/bin/alias'] } }, 'v1');
    await pushImage(other.dir, reg.port, 'library/b', 'v1', { sourceTag: 'v1' });
    const store = join(t.path, 's');
    const a = await fi(store, ['--json', `${reg.host}/library/a:v1`, '--tls-verify=false']);
    assert.is(a.code, 0, a.stderr);
    const pinA = JSON.parse(a.stdout.toString()) as Pin;
    const ranges = join(store, 'nix/var/fetch-image/ranges/sha256');
    const entries = () => readdirSync(ranges).map((f) => JSON.parse(readFileSync(join(ranges, f), 'utf8')) as { path: string; offset: number; size: number });
    assert.is(entries().length, 2, 'one index entry per layer');
    assert.ok(entries().every((e) => e.path === pinA.storePath), 'layers indexed inside the first archive');
    const b = await fi(store, ['--json', `${reg.host}/library/b:v1`, '--tls-verify=false']);
    assert.is(b.code, 0, b.stderr);
    assert.ok(entries().every((e) => e.path === pinA.storePath), 'the second image used the first archive (its own ranges are not recorded over it)');
    const pinB = JSON.parse(b.stdout.toString()) as Pin;
    const ref = join(t.path, 'skopeo-b.tar');
    await runOk('skopeo', ['--insecure-policy', 'copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/library/b:v1`, `docker-archive:${ref}:${pinB.finalImageName}:${pinB.finalImageTag}`]);
    assert.is(sha256(readFileSync(pinB.path)), sha256(readFileSync(ref)), 'archive built from copied layers equals skopeo\'s');

    // Damage a layer inside the first archive, then pull a third name: detected, refetched.
    const victim = entries()[0]!;
    chmodSync(pinA.path, 0o644);
    const bytes = readFileSync(pinA.path);
    bytes[victim.offset + 100] = bytes[victim.offset + 100]! ^ 0xff;
    writeFileSync(pinA.path, bytes);
    const c = await fi(store, ['--json', `${reg.host}/library/b:v1`, '--tls-verify=false', '--final-image-name', 'again']);
    assert.is(c.code, 0, c.stderr);
    const pinC = JSON.parse(c.stdout.toString()) as Pin;
    const fresh = await fi(join(t.path, 'fresh'), ['--json', `${reg.host}/library/b:v1`, '--tls-verify=false', '--final-image-name', 'again']);
    assert.is(fresh.code, 0, fresh.stderr);
    assert.is(pinC.hash, (JSON.parse(fresh.stdout.toString()) as Pin).hash, 'same bytes as a pull into an empty store');
    const s = new LocalStore({ root: store });
    assert.equal((await s.verify({ checkContents: true })).problems.map((p) => p.path), [pinA.storePath], 'only the damaged archive is bad');
  } finally {
    await reg.stop();
    t.remove();
  }
});

test('htpasswd basic auth with --creds; wrong password fails without echoing it', async () => {
  if (!peers()) return;
  const t = tempDir();
  const reg = await startRegistry({ auth: { username: 'alice', password: 's3cret-pw' } });
  try {
    const built = await makeImage(join(t.path, 'layout'), TWO_LAYERS, 'v1');
    await pushImage(built.dir, reg.port, 'team/app', 'v1', { sourceTag: 'v1', auth: { username: 'alice', password: 's3cret-pw' } });
    const store = join(t.path, 's');
    const ok = await fi(store, [`${reg.host}/team/app:v1`, '--tls-verify=false', '--creds', 'alice:s3cret-pw']);
    assert.is(ok.code, 0, ok.stderr);
    const bad = await fi(store, [`${reg.host}/team/app:v1`, '--tls-verify=false', '--creds', 'alice:wrong-pw', '--final-image-tag', 'x']);
    assert.is(bad.code, 1);
    assert.not.match(bad.stderr, 'wrong-pw');
    assert.is(bad.stderr.trim().split('\n').length, 1, 'one-line error');
  } finally {
    await reg.stop();
    t.remove();
  }
});

test.run();
