import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { createWriteStream, readFileSync, existsSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  layerFromFile, uncompressLayerToFile, writeDockerArchive, type ArchiveLayer, type RepoTag,
} from '../lib/image/index.js';
import {
  makeImage, makeIndex, pushImage, type BuiltImage, type ImageSpec, type LayerSpec,
} from '../store-fixtures/images/index.js';
import { havePeer } from './helpers/peers.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { run, runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';

// Byte-for-byte comparison of our docker-archive writer with `skopeo copy ... docker-archive:`
// (the engine of nixpkgs pullImage), fed from a real registry.

const peersHere = () => havePeer('docker-registry') && havePeer('skopeo');

const BASE: LayerSpec = {
  entries: [
    { type: 'dir', path: 'bin' },
    { type: 'dir', path: 'etc' },
    { type: 'file', path: 'etc/hello', content: 'hello\n' },
    { type: 'file', path: 'bin/tool', content: '#!/bin/sh\necho tool\n', mode: 0o755 },
    { type: 'symlink', path: 'bin/sh-link', target: 'tool' },
    { type: 'file', path: 'etc/owned', content: 'x', uid: 1000, gid: 100 },
  ],
};
const BIG: LayerSpec = {
  entries: [{ type: 'dir', path: 'data' }, { type: 'random', path: 'data/blob', size: 600_000, seed: 42 }],
};
const WHITEOUT: LayerSpec = {
  entries: [{ type: 'file', path: 'etc/.wh.owned' }, { type: 'file', path: 'etc/hello', content: 'replaced\n' }],
};

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

// Names the tar entry holding `offset`, so a mismatch says where it is, not just that it is.
function entryAt(archive: Buffer, offset: number): string {
  let off = 0;
  while (off + 512 <= archive.length) {
    const h = archive.subarray(off, off + 512);
    if (h.every((b) => b === 0)) return `end-of-archive blocks at ${off}`;
    const name = h.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '') || '0', 8);
    const end = off + 512 + Math.ceil(size / 512) * 512;
    if (offset < off + 512) return `header of ${name} (at ${off})`;
    if (offset < end) return `content of ${name}, byte ${offset - off - 512}`;
    off = end;
  }
  return 'past the end';
}

function assertSameArchive(oursPath: string, refPath: string): void {
  const ours = readFileSync(oursPath);
  const ref = readFileSync(refPath);
  if (ours.equals(ref)) return;
  let i = 0;
  while (i < ours.length && i < ref.length && ours[i] === ref[i]) i++;
  assert.unreachable(`archives differ (ours ${ours.length} bytes sha256 ${sha256(ours)}, skopeo ${ref.length} bytes sha256 ${sha256(ref)}); ` +
    `first difference at offset ${i}: ${entryAt(ref, i)}`);
}

/** Fetches a registry blob as a stream (plain HTTP, as a client would). */
async function blobStream(reg: Registry, name: string, digest: string): Promise<Readable> {
  const res = await fetch(`${reg.url}/v2/${name}/blobs/${digest}`);
  if (res.status !== 200 || !res.body) throw new Error(`blob ${digest}: HTTP ${res.status}`);
  return Readable.fromWeb(res.body);
}

/** Our archive for `image`: manifest and config checked against the registry, layers pulled, decompressed, written. */
async function ourArchive(reg: Registry, name: string, image: BuiltImage, dir: string, out: string, repoTags: RepoTag[]): Promise<void> {
  const res = await fetch(`${reg.url}/v2/${name}/manifests/${image.digest}`, { headers: { accept: image.mediaType } });
  const served = Buffer.from(await res.arrayBuffer());
  assert.ok(served.equals(image.manifest), 'registry serves different manifest bytes than generated');
  const config = Buffer.concat(await (await blobStream(reg, name, image.configDigest)).toArray() as Buffer[]);
  assert.ok(config.equals(image.config));
  const layers: ArchiveLayer[] = [];
  for (const [i, l] of image.layers.entries()) {
    const file = join(dir, `layer-${i}.tar`);
    const u = await uncompressLayerToFile(await blobStream(reg, name, l.digest), file);
    assert.is(u.diffId, l.diffId);
    assert.is(u.size, l.uncompressedSize);
    layers.push(await layerFromFile(file, u.diffId));
  }
  await writeDockerArchive(out, { config, layers, repoTags });
}

async function skopeoArchive(reg: Registry, name: string, digest: string, out: string, dest: string, extra: string[] = []): Promise<void> {
  await runOk('skopeo', ['copy', '-q', '--src-tls-verify=false', ...extra, `docker://${reg.host}/${name}@${digest}`, `docker-archive:${out}${dest}`]);
}

/** Builds, pushes, pulls both ways, compares. */
async function compareSingle(spec: ImageSpec): Promise<void> {
  const tmp = tempDir();
  const reg = await startRegistry();
  try {
    const built = await makeImage(join(tmp.path, 'layout'), spec, 'v1');
    await pushImage(built.dir, reg.port, 'library/fixture', 'v1');
    await skopeoArchive(reg, 'library/fixture', built.digest, join(tmp.path, 'ref.tar'), ':fixture:v1');
    await ourArchive(reg, 'library/fixture', built.images[0]!, tmp.path, join(tmp.path, 'ours.tar'),
      [{ name: 'docker.io/library/fixture', tag: 'v1' }]);
    assertSameArchive(join(tmp.path, 'ours.tar'), join(tmp.path, 'ref.tar'));
  } finally {
    await reg.stop();
    tmp.remove();
  }
}

test('OCI image, gzip layers (dirs, symlink, executable, owner, 600 kB file, whiteout): identical to skopeo', async () => {
  if (!peersHere()) return;
  await compareSingle({ mediaTypes: 'oci', layers: [BASE, BIG, WHITEOUT] });
});

test('Docker media types, indented config with <>&, non-ASCII, U+2028 and Docker-only fields, a repeated layer: identical to skopeo', async () => {
  if (!peersHere()) return;
  await compareSingle({
    mediaTypes: 'docker',
    pretty: true,
    layers: [BASE, WHITEOUT, BASE],
    runConfig: { Labels: { 'org.example.note': 'a <b> & c — é \u2028 \u2029', empty: '' }, WorkingDir: '/' },
    extraConfig: {
      container: 'f1e2d3', docker_version: '20.10.7',
      container_config: { Hostname: '', Cmd: ['/bin/sh', '-c', '#(nop) CMD ["/bin/sh"]'], Image: 'sha256:00', Labels: null },
      numbers: [1.0, 1e3, -0.5],
    },
  });
});

test('config with number and escape forms only Go\'s compact() keeps as written: identical to skopeo', async () => {
  if (!peersHere()) return;
  await compareSingle({
    layers: [BASE],
    runConfig: { StopSignal: 'SIGTERM' },
    // Inside "config" (copied into the top legacy json): 1.50E+1, \u00e9, \/ and a tab between tokens.
    editConfig: (json) => json.replace('"StopSignal":"SIGTERM"', '"StopSignal":"SIG\\u00e9\\/TERM",\t"StopTimeout" : 1.50E+1 ,"X":[ 0.0 ,-0, 1e-7 ]'),
  });
});

test('single layer, config without container/docker_version fields (they become null): identical to skopeo', async () => {
  if (!peersHere()) return;
  await compareSingle({ layers: [{ entries: [{ type: 'file', path: 'only', content: 'one\n' }] }] });
});

test('zstd layers: skopeo 1.9 refuses docker-archive; ours equals skopeo\'s archive of the gzip twin', async () => {
  if (!peersHere()) return;
  const tmp = tempDir();
  const reg = await startRegistry();
  try {
    const zstd = await makeImage(join(tmp.path, 'zstd'), { layers: [{ ...BASE, compression: 'zstd' }, { ...BIG, compression: 'zstd' }] }, 'z');
    const gzip = await makeImage(join(tmp.path, 'gzip'), { layers: [BASE, BIG] }, 'g');
    assert.is(zstd.images[0]!.configDigest, gzip.images[0]!.configDigest, 'twins must share the config');
    assert.is.not(zstd.images[0]!.layers[0]!.digest, gzip.images[0]!.layers[0]!.digest);
    await pushImage(zstd.dir, reg.port, 'library/zstd', 'z');
    await pushImage(gzip.dir, reg.port, 'library/gzip', 'g');
    const refused = await run('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/library/zstd@${zstd.digest}`,
      `docker-archive:${join(tmp.path, 'z.tar')}:zstd:z`]);
    assert.is.not(refused.code, 0);
    assert.match(refused.stderr, /zstd compression is not supported for docker images/);
    await skopeoArchive(reg, 'library/gzip', gzip.digest, join(tmp.path, 'ref.tar'), ':zstd:z');
    await ourArchive(reg, 'library/zstd', zstd.images[0]!, tmp.path, join(tmp.path, 'ours.tar'), [{ name: 'docker.io/library/zstd', tag: 'z' }]);
    assertSameArchive(join(tmp.path, 'ours.tar'), join(tmp.path, 'ref.tar'));
  } finally {
    await reg.stop();
    tmp.remove();
  }
});

const PLATFORMS: { spec: ImageSpec; skopeo: string[] }[] = [
  { spec: { platform: { os: 'linux', architecture: 'amd64' }, layers: [BASE] }, skopeo: ['--override-arch', 'amd64'] },
  { spec: { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, layers: [BASE, WHITEOUT] }, skopeo: ['--override-arch', 'arm64', '--override-variant', 'v8'] },
  { spec: { platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, layers: [{ entries: [{ type: 'file', path: 'armv7', content: 'v7\n' }] }] }, skopeo: ['--override-arch', 'arm', '--override-variant', 'v7'] },
];

for (const kind of ['oci', 'docker'] as const) {
  test(`multi-arch ${kind === 'oci' ? 'OCI index' : 'Docker manifest list'}: each platform identical to skopeo --override-arch`, async () => {
    if (!peersHere()) return;
    const tmp = tempDir();
    const reg = await startRegistry();
    try {
      const built = await makeIndex(join(tmp.path, 'layout'), { mediaTypes: kind, images: PLATFORMS.map((p) => p.spec) }, 'multi');
      await pushImage(built.dir, reg.port, 'library/multi', 'multi');
      for (const [i, p] of PLATFORMS.entries()) {
        const ref = join(tmp.path, `ref-${i}.tar`);
        const ours = join(tmp.path, `ours-${i}.tar`);
        await skopeoArchive(reg, 'library/multi', built.digest, ref, ':multi:multi', p.skopeo);
        await ourArchive(reg, 'library/multi', built.images[i]!, tmp.path, ours, [{ name: 'docker.io/library/multi', tag: 'multi' }]);
        assertSameArchive(ours, ref);
      }
    } finally {
      await reg.stop();
      tmp.remove();
    }
  });
}

test('untagged: RepoTags [] and repositories {} like skopeo; Writable output equals file output', async () => {
  if (!peersHere()) return;
  const tmp = tempDir();
  const reg = await startRegistry();
  try {
    const built = await makeImage(join(tmp.path, 'layout'), { layers: [BASE, BIG] }, 'v1');
    await pushImage(built.dir, reg.port, 'library/untagged', 'v1');
    await skopeoArchive(reg, 'library/untagged', built.digest, join(tmp.path, 'ref.tar'), '');
    await ourArchive(reg, 'library/untagged', built.images[0]!, tmp.path, join(tmp.path, 'ours.tar'), []);
    assertSameArchive(join(tmp.path, 'ours.tar'), join(tmp.path, 'ref.tar'));

    const image = built.images[0]!;
    const layers = await Promise.all(image.layers.map((_, i) => layerFromFile(join(tmp.path, `layer-${i}.tar`), image.layers[i]!.diffId)));
    const stream = createWriteStream(join(tmp.path, 'stream.tar'));
    await writeDockerArchive(stream, { config: image.config, layers, repoTags: [] });
    stream.end();
    await once(stream, 'close');
    assertSameArchive(join(tmp.path, 'stream.tar'), join(tmp.path, 'ref.tar'));
  } finally {
    await reg.stop();
    tmp.remove();
  }
});

test('a layer whose bytes do not match its diff_id or size fails, and the partial file is removed', async () => {
  const tmp = tempDir();
  try {
    const built = await makeImage(join(tmp.path, 'layout'), { layers: [BASE] }, 'v1');
    const image = built.images[0]!;
    const blob = join(built.dir, 'blobs/sha256', image.layers[0]!.digest.slice(7));
    const { createReadStream } = await import('node:fs');
    const u = await uncompressLayerToFile(createReadStream(blob), join(tmp.path, 'l.tar'));
    const good = await layerFromFile(join(tmp.path, 'l.tar'), u.diffId);
    const out = join(tmp.path, 'bad.tar');
    const wrongId = { ...good, diffId: `sha256:${'0'.repeat(64)}` };
    try {
      await writeDockerArchive(out, { config: image.config, layers: [wrongId], repoTags: [] });
      assert.unreachable('wrong diff_id accepted');
    } catch (e) {
      assert.match(String(e), /expected diff_id sha256:0000/, String(e));
    }
    assert.not.ok(existsSync(out));
    try {
      await writeDockerArchive(out, { config: image.config, layers: [{ ...good, size: good.size + 1 }], repoTags: [] });
      assert.unreachable('wrong size accepted');
    } catch (e) {
      assert.match(String(e), /declared size/);
    }
    assert.not.ok(existsSync(out));
  } finally {
    tmp.remove();
  }
});

test('podman load accepts our archive: tag, image id = config digest, layers = diff_ids', async () => {
  if (!havePeer('podman')) return;
  const tmp = tempDir();
  try {
    const built = await makeImage(join(tmp.path, 'layout'), { layers: [BASE, BIG, WHITEOUT] }, 'v1');
    const image = built.images[0]!;
    const layers: ArchiveLayer[] = [];
    const { createReadStream } = await import('node:fs');
    for (const [i, l] of image.layers.entries()) {
      const file = join(tmp.path, `l${i}.tar`);
      const u = await uncompressLayerToFile(createReadStream(join(built.dir, 'blobs/sha256', l.digest.slice(7))), file);
      layers.push(await layerFromFile(file, u.diffId));
    }
    const archive = join(tmp.path, 'ours.tar');
    await writeDockerArchive(archive, { config: image.config, layers, repoTags: [{ name: 'docker.io/library/loaded', tag: 'v1' }] });
    // vfs needs no kernel overlay support and works as root inside a container; own root/runroot keep it hermetic.
    const podman = ['--storage-driver', 'vfs', '--root', join(tmp.path, 'root'), '--runroot', join(tmp.path, 'runroot'),
      '--events-backend', 'none', '--cgroup-manager', 'cgroupfs'];
    const loaded = (await runOk('podman', [...podman, 'load', '-q', '-i', archive])).toString();
    assert.match(loaded, /docker\.io\/library\/loaded:v1/);
    const inspect = JSON.parse((await runOk('podman', [...podman, 'image', 'inspect', 'docker.io/library/loaded:v1'])).toString()) as
      { Id: string; RootFS: { Layers: string[] } }[];
    assert.is(`sha256:${inspect[0]!.Id}`, image.configDigest);
    assert.equal(inspect[0]!.RootFS.Layers, image.layers.map((l) => l.diffId));
  } finally {
    tmp.remove();
  }
});

test.run();
