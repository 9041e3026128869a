/** writeV1Tarball: a reproducible docker-load archive of a pulled v1 directory, read by podman. */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { list, type ReadEntry } from 'tar';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeDispatchers } from '../lib/fetch/index.js';
import { pullV1, writeV1Tarball, type PullV1Result } from '../lib/registry/v1/index.js';
import { buildV1Image, noise, startV1Registry } from '../store-fixtures/v1-registry/index.js';
import { havePeer } from './helpers/peers.js';
import { runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';

const IMAGE = buildV1Image({
  name: 'library/tiny',
  tags: ['latest'],
  layers: [
    { files: { 'bin/tool': noise(50_000, 'tool'), 'etc/os-release': 'ID=tiny\n' } },
    { files: { 'etc/motd': 'hello\n' }, gzip: true, json: { author: 'Zoë', comment: 'second' } },
  ],
});

async function pullInto(dir: string, unstable: boolean): Promise<PullV1Result> {
  const reg = await startV1Registry({ images: [IMAGE], unstable });
  try {
    return await pullV1({ name: IMAGE.name, indexUrl: reg.indexUrl, out: dir, retryBaseMs: 5, fetch: { env: {} } });
  } finally {
    await reg.close();
  }
}

interface Listed {
  path: string;
  type: string;
  mode: number | undefined;
  uid: number | undefined;
  gid: number | undefined;
  uname: string | undefined;
  gname: string | undefined;
  mtime: number | undefined;
}

async function entries(file: string): Promise<Listed[]> {
  const out: Listed[] = [];
  await list({
    file,
    onReadEntry: (e: ReadEntry) => {
      out.push({ path: e.path, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, uname: e.uname, gname: e.gname, mtime: e.mtime?.getTime() });
    },
  });
  return out;
}

test('the archive is byte-identical across pulls and writes, sorted, owner 0, mtime 0, gzip without name or time', async () => {
  const dir = tempDir('fi-v1tb-');
  try {
    const a = await pullInto(join(dir.path, 'a'), false);
    const b = await pullInto(join(dir.path, 'b'), true);
    const ta = await writeV1Tarball({ dir: a.dir, dest: join(dir.path, 'a.tar.gz'), name: a.name, tag: a.tag, layers: a.layers });
    const tb = await writeV1Tarball({ dir: b.dir, dest: join(dir.path, 'b.tar.gz'), name: b.name, tag: b.tag, layers: b.layers });
    const bytes = readFileSync(join(dir.path, 'a.tar.gz'));
    assert.ok(bytes.equals(readFileSync(join(dir.path, 'b.tar.gz'))), 'same bytes from a stable and an unstable registry');
    assert.ok(ta.hash.equals(tb.hash));
    assert.is(ta.hash.base16, createHash('sha256').update(bytes).digest('hex'));
    assert.is(ta.size, bytes.length);

    // gzip: magic, deflate, no FNAME/FCOMMENT/FEXTRA flags, MTIME 0.
    assert.equal([...bytes.subarray(0, 8)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);

    const listed = await entries(join(dir.path, 'a.tar.gz'));
    const names = listed.map((e) => e.path);
    assert.equal(names, [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
    const [top, base] = IMAGE.ancestry as [string, string];
    const expected = [`${ta.config}`, 'manifest.json', 'repositories',
      ...[top, base].flatMap((id) => [`${id}/`, `${id}/VERSION`, `${id}/json`, `${id}/layer.tar`])].sort();
    assert.equal([...names].sort(), expected);
    for (const e of listed) {
      assert.is(e.uid, 0);
      assert.is(e.gid, 0);
      assert.is(e.uname ?? '', '');
      assert.is(e.gname ?? '', '');
      assert.is(e.mtime, 0);
      assert.is(e.mode, e.type === 'Directory' ? 0o755 : 0o644);
    }
  } finally {
    dir.remove();
  }
});

test('manifest.json and the config describe the layers docker-load style', async () => {
  const dir = tempDir('fi-v1tb-');
  try {
    const r = await pullInto(join(dir.path, 'img'), false);
    const t = await writeV1Tarball({ dir: r.dir, dest: join(dir.path, 'img.tar'), name: r.name, tag: r.tag, layers: r.layers, gzip: false });
    const [top, base] = IMAGE.ancestry as [string, string];
    const files = new Map<string, Buffer>();
    await list({
      file: join(dir.path, 'img.tar'),
      onReadEntry: (e: ReadEntry) => {
        const parts: Buffer[] = [];
        e.on('data', (d: Buffer) => parts.push(d));
        e.on('end', () => files.set(e.path, Buffer.concat(parts)));
      },
    });
    assert.equal(JSON.parse(files.get('manifest.json')!.toString()), [{ Config: t.config, RepoTags: ['library/tiny:latest'], Layers: [`${base}/layer.tar`, `${top}/layer.tar`] }]);
    assert.is(t.config, `${createHash('sha256').update(files.get(t.config)!).digest('hex')}.json`);
    const config = JSON.parse(files.get(t.config)!.toString()) as { rootfs: { type: string; diff_ids: string[] }; history: Array<{ author?: string; created_by?: string }>; id?: string; parent?: string; architecture: string };
    // diff ids: sha256 of each layer as an uncompressed tar, base first (the top layer is served gzipped).
    const diff = (id: string, gz: boolean) => `sha256:${createHash('sha256').update(gz ? gunzipSync(IMAGE.layers.get(id)!.tar) : IMAGE.layers.get(id)!.tar).digest('hex')}`;
    assert.equal(config.rootfs, { type: 'layers', diff_ids: [diff(base, false), diff(top, true)] });
    assert.equal(t.diffIds, config.rootfs.diff_ids);
    assert.is(config.history.length, 2);
    assert.is(config.history[1]!.author, 'Zoë');
    assert.match(config.history[0]!.created_by ?? '', /^\/bin\/sh -c #\(nop\) ADD file:/);
    assert.is(config.id, undefined);
    assert.is(config.parent, undefined);
    assert.is(config.architecture, 'amd64');
  } finally {
    dir.remove();
  }
});

test('podman load accepts the archive', async () => {
  if (!havePeer('podman')) return;
  const dir = tempDir('fi-v1tb-');
  try {
    const r = await pullInto(join(dir.path, 'img'), true);
    const t = await writeV1Tarball({ dir: r.dir, dest: join(dir.path, 'img.tar.gz'), name: r.name, tag: r.tag, layers: r.layers });
    // Bookworm's podman 4.3.1 cannot read gzip docker-archives at all (not even `gzip` of its own
    // `podman save`), so it is handed the same archive decompressed.
    writeFileSync(join(dir.path, 'img.tar'), gunzipSync(readFileSync(join(dir.path, 'img.tar.gz'))));
    const podman = ['--storage-driver', 'vfs', '--root', join(dir.path, 'root'), '--runroot', join(dir.path, 'runroot')];
    const loaded = (await runOk('podman', [...podman, 'load', '-i', join(dir.path, 'img.tar')])).toString();
    assert.match(loaded, /Loaded image: localhost\/library\/tiny:latest/);
    const layers = JSON.parse((await runOk('podman', [...podman, 'image', 'inspect', '--format', '{{json .RootFS.Layers}}', 'localhost/library/tiny:latest'])).toString()) as string[];
    assert.equal(layers, t.diffIds);
  } finally {
    dir.remove();
  }
});

test.after(async () => {
  await closeDispatchers();
});

test.run();
