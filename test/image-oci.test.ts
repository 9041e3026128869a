import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import {
  OCI_INDEX, dockerConfigToOci, goRfc3339Nano, toOciImage, toOciIndex, writeOciLayout, type OciBlob,
} from '../lib/image/index.js';
import { makeImage, makeIndex, pushImage, type ImageSpec, type LayerSpec } from '../store-fixtures/images/index.js';
import { havePeer } from './helpers/peers.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';

// Our OCI layouts against `skopeo copy docker://... oci:DIR:TAG` (file for file, byte for byte),
// and read back by umoci unpack and skopeo inspect.

const peersHere = () => havePeer('docker-registry') && havePeer('skopeo');

const BASE: LayerSpec = {
  entries: [
    { type: 'dir', path: 'etc' },
    { type: 'file', path: 'etc/hello', content: 'hello\n' },
    { type: 'dir', path: 'bin' },
    { type: 'file', path: 'bin/tool', content: '#!/bin/sh\n', mode: 0o755 },
    { type: 'symlink', path: 'bin/link', target: 'tool' },
  ],
};
const EXTRA: LayerSpec = { entries: [{ type: 'random', path: 'etc/data', size: 200_000, seed: 3 }] };

// Docker-era config quirks skopeo's conversion must handle: fractional/offset times (a 1-digit
// hour and a comma fraction too), keys in other cases, nulls, Docker-only fields, HTML characters.
const DOCKER_CONFIG: ImageSpec = {
  mediaTypes: 'docker',
  layers: [BASE, EXTRA],
  runConfig: {
    User: '1000:1000', ExposedPorts: { '80/tcp': {}, '443/tcp': null }, Entrypoint: ['/e'], Volumes: { '/v': {} },
    WorkingDir: '/w', Labels: { b: '2', a: 'x <&> y', n: null }, StopSignal: 'SIGINT', ArgsEscaped: true,
    Healthcheck: { Test: ['NONE'] }, OnBuild: null, Hostname: 'h', Image: 'sha256:abc', Env: [],
  },
  extraConfig: {
    container: 'abc', docker_version: '20.10.7', container_config: { Cmd: ['x'] },
    history: [
      { created: '2024-01-01T1:02:03,5Z', created_by: 'a', empty_layer: true, comment: 'c', author: 'au' },
      { Created: '2023-10-10T00:21:06.510519350Z', created_by: 'b', empty_layer: false },
    ],
  },
  editConfig: (json) => json.replace('"created":"2024-01-01T00:00:00Z"',
    '"created":"2024-01-01T10:00:00.123400000+02:00","Author":"me <a@b>","os.version":"10.0","os.features":["win32k"],"Variant":"v8","VARIANT":"v9"'),
};

async function fetchBytes(reg: Registry, path: string, accept?: string): Promise<Buffer> {
  const res = await fetch(`${reg.url}${path}`, accept ? { headers: { accept } } : {});
  if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

interface Desc { mediaType: string; digest: string; size: number }

/** What a client would do: fetch the manifest(s) and configs, convert Docker ones, stream layers from the registry. */
async function layoutFromRegistry(reg: Registry, name: string, digest: string, mediaType: string, dir: string, refName: string): Promise<void> {
  const blobs: OciBlob[] = [];
  const image = async (m: Desc) => {
    const bytes = await fetchBytes(reg, `/v2/${name}/manifests/${m.digest}`, m.mediaType);
    const parsed = JSON.parse(bytes.toString()) as { config: Desc; layers: Desc[] };
    const config = await fetchBytes(reg, `/v2/${name}/blobs/${parsed.config.digest}`);
    const converted = toOciImage({ mediaType: m.mediaType, bytes }, config);
    const cfgDigest = (JSON.parse(converted.manifest.bytes.toString()) as { config: Desc }).config.digest;
    blobs.push({ digest: cfgDigest, size: converted.config.length, data: converted.config });
    for (const l of parsed.layers) {
      blobs.push({
        digest: l.digest, size: l.size,
        data: async () => {
          const res = await fetch(`${reg.url}/v2/${name}/blobs/${l.digest}`);
          return Readable.fromWeb(res.body!);
        },
      });
    }
    return converted.manifest.bytes;
  };
  const top = await fetchBytes(reg, `/v2/${name}/manifests/${digest}`, ACCEPT);
  if (mediaType.endsWith('index.v1+json') || mediaType.endsWith('list.v2+json')) {
    const list = JSON.parse(top.toString()) as { manifests: Desc[] };
    const converted = new Map<string, Buffer>();
    for (const child of list.manifests) {
      const bytes = await image(child);
      converted.set(child.digest, bytes);
      const { createHash } = await import('node:crypto');
      blobs.push({ digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length, data: bytes });
    }
    await writeOciLayout(dir, { manifest: toOciIndex({ mediaType, bytes: top }, converted), refName, blobs });
  } else {
    const bytes = await image({ mediaType, digest, size: top.length });
    await writeOciLayout(dir, { manifest: { mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes }, refName, blobs });
  }
}

function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(dir, p), `${(statSync(p).mode & 0o111) ? 'x' : '-'}${readFileSync(p).toString('base64')}`);
    }
  };
  walk(dir);
  return out;
}

function assertSameLayout(ours: string, ref: string): void {
  const a = tree(ours);
  const b = tree(ref);
  assert.equal([...a.keys()].sort(), [...b.keys()].sort(), 'layouts hold different files');
  for (const [path, content] of b) {
    if (a.get(path) !== content) {
      const text = (v: string | undefined) => Buffer.from((v ?? '').slice(1), 'base64').toString('latin1').slice(0, 2000);
      assert.fixture(text(a.get(path)), text(content), `${path} differs from skopeo's`);
    }
  }
}

async function compare(spec: ImageSpec | { index: Parameters<typeof makeIndex>[1] }, check?: (layout: string, tag: string) => Promise<void>): Promise<void> {
  const tmp = tempDir();
  const reg = await startRegistry();
  try {
    const built = 'index' in spec
      ? await makeIndex(join(tmp.path, 'src'), spec.index, 'v1')
      : await makeImage(join(tmp.path, 'src'), spec, 'v1');
    await pushImage(built.dir, reg.port, 'library/oci', 'v1');
    const all = 'index' in spec ? ['--all'] : [];
    await runOk('skopeo', ['copy', '-q', ...all, '--src-tls-verify=false', `docker://${reg.host}/library/oci@${built.digest}`, `oci:${join(tmp.path, 'ref')}:v1`]);
    await layoutFromRegistry(reg, 'library/oci', built.digest, built.mediaType, join(tmp.path, 'ours'), 'v1');
    assertSameLayout(join(tmp.path, 'ours'), join(tmp.path, 'ref'));
    const inspected = JSON.parse((await runOk('skopeo', ['inspect', '--raw', `oci:${join(tmp.path, 'ours')}:v1`])).toString()) as { schemaVersion: number };
    assert.is(inspected.schemaVersion, 2);
    if (check) await check(join(tmp.path, 'ours'), 'v1');
  } finally {
    await reg.stop();
    tmp.remove();
  }
}

async function umociUnpack(layout: string, tag: string): Promise<string> {
  const bundle = `${layout}-bundle`;
  await runOk('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle]);
  return join(bundle, 'rootfs');
}

test('OCI image: identical to skopeo oci:, umoci unpacks it (files, symlink, exec bit), skopeo inspects it', async () => {
  if (!peersHere()) return;
  await compare({ layers: [BASE, EXTRA] }, async (layout, tag) => {
    const info = JSON.parse((await runOk('skopeo', ['inspect', `oci:${layout}:${tag}`])).toString()) as { Layers: string[]; Architecture: string };
    assert.is(info.Layers.length, 2);
    assert.is(info.Architecture, 'amd64');
    if (!havePeer('umoci')) return;
    const rootfs = await umociUnpack(layout, tag);
    assert.is(readFileSync(join(rootfs, 'etc/hello'), 'utf8'), 'hello\n');
    assert.is(readlinkSync(join(rootfs, 'bin/link')), 'tool');
    assert.ok(statSync(join(rootfs, 'bin/tool')).mode & 0o100, 'executable bit lost');
    assert.is(lstatSync(join(rootfs, 'etc/data')).size, 200_000);
  });
});

// Debian's umoci (0.4) cannot unpack zstd layers ("blob is not correct mediatype"), so skopeo reads this one.
test('OCI image with a zstd layer: identical to skopeo oci:, skopeo inspects it', async () => {
  if (!peersHere()) return;
  await compare({ layers: [BASE, { ...EXTRA, compression: 'zstd' }] }, async (layout, tag) => {
    const info = JSON.parse((await runOk('skopeo', ['inspect', `oci:${layout}:${tag}`])).toString()) as { Digest: string; Layers: string[] };
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Desc[] };
    assert.is(info.Digest, index.manifests[0]!.digest);
    const raw = JSON.parse((await runOk('skopeo', ['inspect', '--raw', `oci:${layout}:${tag}`])).toString()) as { layers: Desc[] };
    assert.equal(raw.layers.map((l) => l.mediaType), ['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd']);
    assert.equal(info.Layers, raw.layers.map((l) => l.digest));
  });
});

test('Docker image: converted like skopeo (config re-marshalled, times re-formatted, Docker fields dropped); umoci unpacks it', async () => {
  if (!peersHere()) return;
  await compare(DOCKER_CONFIG, async (layout, tag) => {
    if (!havePeer('umoci')) return;
    const rootfs = await umociUnpack(layout, tag);
    assert.is(readFileSync(join(rootfs, 'etc/hello'), 'utf8'), 'hello\n');
  });
});

const PLATFORMS: ImageSpec[] = [
  { platform: { os: 'linux', architecture: 'amd64' }, layers: [BASE] },
  { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, layers: [BASE, EXTRA] },
  { platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, layers: [{ entries: [{ type: 'file', path: 'v7', content: '7' }] }] },
];

test('Docker manifest list (3 platforms), copy --all: identical to skopeo oci:', async () => {
  if (!peersHere()) return;
  await compare({ index: { mediaTypes: 'docker', images: PLATFORMS } });
});

test('OCI index (3 platforms), copy --all: identical to skopeo oci:, index kept as fetched', async () => {
  if (!peersHere()) return;
  await compare({ index: { mediaTypes: 'oci', images: PLATFORMS } }, async (layout) => {
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Desc[] };
    assert.is(index.manifests[0]!.mediaType, OCI_INDEX);
  });
});

test('Go time round trip (RFC3339 in, RFC3339Nano out) as seen from skopeo', () => {
  assert.is(goRfc3339Nano('"2024-01-01T10:00:00.123400000+02:00"'), '2024-01-01T10:00:00.1234+02:00');
  assert.is(goRfc3339Nano('"2024-01-01T00:00:00.000+00:00"'), '2024-01-01T00:00:00Z');
  assert.is(goRfc3339Nano('"2000-02-29T23:59:59.999999999Z"'), '2000-02-29T23:59:59.999999999Z');
  assert.is(goRfc3339Nano('"2023-10-10T00:21:06.5105193501234Z"'), '2023-10-10T00:21:06.51051935Z');
  assert.is(goRfc3339Nano('"2024-01-01T1:02:03,5Z"'), '2024-01-01T01:02:03.5Z');
  assert.is(goRfc3339Nano('"2024-01-01T00:00:00-00:00"'), '2024-01-01T00:00:00Z');
  for (const bad of ['"2023-02-29T00:00:00Z"', '"2024-01-01 00:00:00Z"', '"2024-01-01T00:00:00"', '"2024-01-01T24:00:00Z"',
    '"2024-01-01T00:00:00z"', '"\\u0032024-01-01T00:00:00Z"', '"2024-13-01T00:00:00Z"']) {
    assert.throws(() => goRfc3339Nano(bad), /parsing time/, bad);
  }
});

test('config conversion: missing fields, type errors', () => {
  assert.is(dockerConfigToOci(Buffer.from('{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]}}')).toString(),
    '{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"","diff_ids":null}}');
  assert.is(dockerConfigToOci(Buffer.from('{}')).toString(), '{"architecture":"","os":"","config":{},"rootfs":{"type":"","diff_ids":null}}');
  // Go merges a repeated object key into the same struct; a repeated array key replaces element-wise.
  assert.is(dockerConfigToOci(Buffer.from('{"config":{"Env":["a","b"]},"config":{"Cmd":["c"],"Env":[null]}}')).toString(),
    '{"architecture":"","os":"","config":{"Env":["a"],"Cmd":["c"]},"rootfs":{"type":"","diff_ids":null}}');
  assert.throws(() => dockerConfigToOci(Buffer.from('{"config":{"Env":"PATH=/bin"}}')), /cannot unmarshal string/);
  assert.throws(() => dockerConfigToOci(Buffer.from('{"created":"yesterday"}')), /parsing time/);
  assert.throws(() => dockerConfigToOci(Buffer.from('{"config":{"ExposedPorts":{"80/tcp":"yes"}}}')), /struct \{\}/);
});

test('writeOciLayout refuses wrong blobs, incomplete images, Docker types and reuse of a layout', async () => {
  const tmp = tempDir();
  try {
    const config = Buffer.from('{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}');
    const { createHash } = await import('node:crypto');
    const digest = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    const layer = Buffer.from('not really a layer');
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digest(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digest(layer), size: layer.length }],
    }));
    const m = { mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes: manifest };
    const cfg: OciBlob = { digest: digest(config), size: config.length, data: config };
    const attempt = async (dir: string, input: Parameters<typeof writeOciLayout>[1], re: RegExp) => {
      try {
        await writeOciLayout(join(tmp.path, dir), input);
        assert.unreachable(`accepted: ${dir}`);
      } catch (e) {
        assert.match(String(e), re);
      }
    };
    await attempt('wrong', { manifest: m, blobs: [cfg, { digest: digest(layer), size: layer.length, data: Buffer.from('other bytes here!!') }] }, /arrived as/);
    await attempt('missing', { manifest: m, blobs: [cfg] }, /missing blob/);
    await attempt('docker', { manifest: { ...m, mediaType: 'application/vnd.docker.distribution.manifest.v2+json' }, blobs: [] }, /needs an OCI manifest/);
    const ok = { manifest: m, refName: 'x', blobs: [cfg, { digest: digest(layer), size: layer.length, data: layer }] };
    const { digest: top } = await writeOciLayout(join(tmp.path, 'ok'), ok);
    assert.is(top, digest(manifest));
    assert.is(readFileSync(join(tmp.path, 'ok', 'oci-layout'), 'utf8'), '{"imageLayoutVersion": "1.0.0"}');
    assert.is(readFileSync(join(tmp.path, 'ok', 'index.json'), 'utf8'),
      `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${top}","size":${manifest.length},"annotations":{"org.opencontainers.image.ref.name":"x"}}]}`);
    assert.equal(readdirSync(join(tmp.path, 'wrong', 'blobs', 'sha256')).filter((n) => n.endsWith('.partial')), []);
    await attempt('ok', ok, /already holds/);
    mkdirSync(join(tmp.path, 'plain'));
    writeFileSync(join(tmp.path, 'plain', 'index.json'), '{}');
    await attempt('plain', ok, /already holds/);
  } finally {
    tmp.remove();
  }
});

test.run();
