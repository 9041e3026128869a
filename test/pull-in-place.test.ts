// Writing the docker-archive in place: layer sizes from the gzip trailer, layers copied from the
// store's own archives, and every way the plan can be wrong (no range requests, a multi-member
// gzip whose trailer lies about the size) ending in the same bytes as the spooling writer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { hashFlatAndNar, GrowingFileHasher, warmFileHashers } from '../lib/nar/index.js';
import { startBadRegistry, type BadRegistry } from '../store-fixtures/bad-registry/index.js';
import { run } from './helpers/run.js';
import { layerTar } from './helpers/layer-tar.js';
import { tempDir } from './helpers/tmp.js';
import { CLI_PATH } from './helpers/cli.js';

const CLI = CLI_PATH;
const fi = (store: string, args: string[]) => run('node', [CLI, '--store', store, '--quiet', '--json', ...args], { env: { PATH: process.env.PATH, HOME: '/nonexistent' } });
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** An image with gzip layers (each given as its uncompressed tar and its gzip bytes) and a config naming their diff_ids. */
function addGzipImage(reg: BadRegistry, name: string, layers: Array<{ tar: Buffer; gz: Buffer }>, cmd: string): string {
  const type = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
  const descs = layers.map((l) => reg.addBlob(l.gz, type));
  const config = reg.addBlob(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: [cmd] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => sha(l.tar)) } }),
    'application/vnd.docker.container.image.v1+json');
  const mediaType = 'application/vnd.docker.distribution.manifest.v2+json';
  return reg.addManifest(name, JSON.stringify({ schemaVersion: 2, mediaType, config, layers: descs }), mediaType, ['v1']).digest;
}

const layerGets = (reg: BadRegistry, digests: readonly string[]) => reg.requests.filter((r) => r.method === 'GET' && digests.some((d) => r.path.endsWith(`/blobs/${d}`)));

test('sizes from the gzip trailer; a second image copies shared layers from the store (no layer request at all)', async () => {
  const t = tempDir();
  const reg = await startBadRegistry();
  try {
    const layers = [layerTar('a.bin', randomBytes(300_000)), layerTar('b.txt', Buffer.from('text '.repeat(400_000)))].map((tar) => ({ tar, gz: gzipSync(tar) }));
    addGzipImage(reg, 'team/one', layers, '/bin/one');
    addGzipImage(reg, 'team/two', layers, '/bin/two');
    const layerDigests = layers.map((l) => sha(l.gz));
    const store = join(t.path, 's');
    const one = await fi(store, [`${reg.host}/team/one:v1`, '--tls-verify=false']);
    assert.is(one.code, 0, one.stderr);
    const gets = layerGets(reg, layerDigests);
    assert.is(gets.filter((r) => r.range).length, 2, 'one trailer request per layer');
    assert.ok(gets.filter((r) => r.range).every((r) => /^bytes=\d+-$/.test(r.range!)), 'trailer requests are ranges');
    reg.requests.length = 0;
    const two = await fi(store, [`${reg.host}/team/two:v1`, '--tls-verify=false']);
    assert.is(two.code, 0, two.stderr);
    assert.equal(layerGets(reg, layerDigests), [], 'no layer bytes fetched for the second image');
    // The same image through the spooling writer (no range requests) gives the same bytes.
    reg.faults.ignoreRange = true;
    const spooled = await fi(join(t.path, 'spool'), [`${reg.host}/team/two:v1`, '--tls-verify=false']);
    assert.is(spooled.code, 0, spooled.stderr);
    assert.is((JSON.parse(two.stdout.toString()) as { hash: string }).hash, (JSON.parse(spooled.stdout.toString()) as { hash: string }).hash);
    // Garbage collection (no roots: both archives go) drops the ranges that pointed into them.
    const ranges = join(store, 'nix/var/fetch-image/ranges/sha256');
    assert.is(readdirSync(ranges).length, 2);
    const gc = await fi(store, ['store', 'gc']);
    assert.is(gc.code, 0, gc.stderr);
    assert.equal(readdirSync(ranges), []);
  } finally {
    await reg.stop();
    t.remove();
  }
});

test('a multi-member gzip layer (its trailer gives only the last member\'s size) falls back to spooling, same bytes', async () => {
  const t = tempDir();
  const reg = await startBadRegistry();
  try {
    const tar = layerTar('big.bin', randomBytes(200_000));
    const multi = Buffer.concat([gzipSync(tar.subarray(0, 100_000)), gzipSync(tar.subarray(100_000))]);
    addGzipImage(reg, 'team/multi', [{ tar, gz: multi }], '/bin/multi');
    const inPlace = await fi(join(t.path, 'a'), [`${reg.host}/team/multi:v1`, '--tls-verify=false']);
    assert.is(inPlace.code, 0, inPlace.stderr);
    reg.faults.ignoreRange = true;
    const spooled = await fi(join(t.path, 'b'), [`${reg.host}/team/multi:v1`, '--tls-verify=false']);
    assert.is(spooled.code, 0, spooled.stderr);
    const hash = (JSON.parse(inPlace.stdout.toString()) as { hash: string }).hash;
    assert.is((JSON.parse(spooled.stdout.toString()) as { hash: string }).hash, hash);
    // Damage the spooled layer: the next pull notices, drops it, fetches it again; same bytes.
    const blobs = join(t.path, 'b/nix/var/fetch-image/blobs/sha256');
    const cached = join(blobs, sha(tar).slice(7));
    assert.ok(existsSync(cached), 'the layer was spooled into the blob cache');
    chmodSync(cached, 0o644);
    const damaged = readFileSync(cached);
    damaged[700] = damaged[700]! ^ 0xff;
    writeFileSync(cached, damaged);
    const again = await fi(join(t.path, 'b'), [`${reg.host}/team/multi:v1`, '--tls-verify=false', '--name', 'again.tar']);
    assert.is(again.code, 0, again.stderr);
    assert.is((JSON.parse(again.stdout.toString()) as { hash: string }).hash, hash);
    assert.not.ok(existsSync(cached), 'the damaged entry was dropped, never used');
  } finally {
    await reg.stop();
    t.remove();
  }
});

test('a manifest listing one layer 2,000 times: the layer is sized and fetched once, for both writers and OCI', async () => {
  const t = tempDir();
  const reg = await startBadRegistry();
  try {
    const layer = layerTar('one.txt', Buffer.from('only layer\n'));
    addGzipImage(reg, 'team/many', Array.from({ length: 2000 }, () => ({ tar: layer, gz: gzipSync(layer) })), '/bin/many');
    const digest = sha(gzipSync(layer));
    const store = join(t.path, 's');
    const inPlace = await fi(store, [`${reg.host}/team/many:v1`, '--tls-verify=false']);
    assert.is(inPlace.code, 0, inPlace.stderr);
    assert.is(layerGets(reg, [digest]).length, 2, 'one trailer request and one download');
    reg.requests.length = 0;
    reg.faults.ignoreRange = true;
    const spooled = await fi(join(t.path, 's2'), [`${reg.host}/team/many:v1`, '--tls-verify=false']);
    assert.is(spooled.code, 0, spooled.stderr);
    assert.is(layerGets(reg, [digest]).filter((r) => !r.range).length, 1, 'spooling writer: one download');
    assert.is(basename(JSON.parse(spooled.stdout.toString()).path), basename(JSON.parse(inPlace.stdout.toString()).path), 'same archive either way');
    reg.requests.length = 0;
    const oci = await fi(join(t.path, 's3'), [`${reg.host}/team/many:v1`, '--tls-verify=false', '--format', 'oci']);
    assert.is(oci.code, 0, oci.stderr);
    assert.is(layerGets(reg, [digest]).length, 1, 'OCI layout: one download');
  } finally {
    await reg.stop();
    t.remove();
  }
});

test('GrowingFileHasher: written out of order, hashed as the finished prefix grows (fresh or warmed workers) or at the end (small file), equals hashing the file', async () => {
  const t = tempDir();
  try {
    const { open } = await import('node:fs/promises');
    for (const size of [3 * (1 << 20) + 12345, 17 * (1 << 20) + 12345]) {
      const path = join(t.path, `f${size}`);
      const data = randomBytes(size);
      // One range (one worker, or none), then several of uneven sizes (two workers, shared out).
      for (const ranges of [[{ offset: 1000, size: size >> 1 }], [{ offset: 0, size: 5000 }, { offset: 5000, size: size >> 2 }, { offset: size >> 1, size: size >> 3 }, { offset: size - 7, size: 7 }]]) {
        writeFileSync(path, Buffer.alloc(0));
        // Workers booted ahead of need (as a pull does while it resolves the image) take the job.
        if (ranges.length > 1) warmFileHashers(2);
        const hasher = new GrowingFileHasher(path, size, { ranges });
        const fh = await open(path, 'r+');
        // Second half first: nothing may be hashed until the first half is there too.
        const half = size >> 1;
        await fh.write(data, half, size - half, half);
        await fh.write(data, 0, half, 0);
        hasher.advance(half);
        hasher.advance(size);
        await fh.close();
        const got = await hasher.finish();
        const want = await hashFlatAndNar(path);
        assert.ok(got.flat.equals(want.flat), `flat, ${size} bytes`);
        assert.ok(got.nar.hash.equals(want.nar.hash), `NAR, ${size} bytes`);
        assert.is(got.nar.size, want.nar.size);
        assert.equal(got.rangeDigests, ranges.map((r) => sha(data.subarray(r.offset, r.offset + r.size))), `range digests, ${ranges.length} ranges`);
      }
    }
  } finally {
    t.remove();
  }
});

test.run();
