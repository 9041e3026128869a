// Every misbehaviour of the fixture registry, through the real CLI: a one-line error, a non-zero
// exit, and a store exactly as it was. Plus the recoverable ones, which must succeed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalStore } from '../lib/store/index.js';
import { addImage, startBadRegistry, startBlobHost, type Faults } from '../store-fixtures/bad-registry/index.js';
import { makeImage } from '../store-fixtures/images/index.js';
import { havePeer } from './helpers/peers.js';
import { run, runOk } from './helpers/run.js';
import { layerTar } from './helpers/layer-tar.js';
import { tempDir } from './helpers/tmp.js';
import { CLI_PATH } from './helpers/cli.js';

const CLI = CLI_PATH;
const fi = (store: string, args: string[]) => run('node', [CLI, '--store', store, '--quiet', ...args], { env: { PATH: process.env.PATH, HOME: '/nonexistent' } });

function storeSnapshot(root: string): string {
  const s = new LocalStore({ root });
  return JSON.stringify({ paths: s.list().map((i) => i.path), tmp: readdirSync(join(root, 'nix/var/fetch-image/tmp')) });
}

test('each fault: one-line error, exit 1, store unchanged', async () => {
  const t = tempDir();
  const reg = await startBadRegistry();
  const cdn = await startBlobHost(reg);
  try {
    // Served uncompressed (we sniff compression by magic), so its digest is also its diff_id.
    const layer = layerTar('payload.bin', Buffer.alloc(200_000, 7));
    const image = addImage(reg, 'team/app', { layers: [layer], tags: ['v1'] });
    const store = join(t.path, 's');
    new LocalStore({ root: store });
    const before = storeSnapshot(store);
    const cases: [string, Faults, RegExp][] = [
      ['wrong manifest digest', { manifestDigest: true }, /digest/i],
      ['wrong blob digest', { blobDigest: true }, /digest/i],
      ['truncated blob', { truncatedBlob: true }, /size|short|truncat|bytes/i],
      ['oversized blob', { oversizedBlob: { extra: 1000 } }, /size|more|bytes|long/i],
      ['huge manifest', { hugeManifest: 8 * 1024 * 1024 }, /manifest.*(large|big|MiB|bytes)/i],
      ['schema 1 manifest', { schema1: true }, /schema 1/i],
    ];
    for (const [what, faults, message] of cases) {
      Object.assign(reg.faults, faults);
      // By digest, as a pin names it (the fixture alters manifests asked for by digest).
      // (A schema 1 answer would fail the digest check first, so that one goes by tag.)
      const ref = faults.schema1 ? `${reg.host}/team/app:v1` : `${reg.host}/team/app@${image.digest}`;
      const r = await fi(store, [ref, '--tls-verify=false', '--final-image-tag', what.replace(/ /g, '-')]);
      for (const k of Object.keys(faults)) delete (reg.faults as Record<string, unknown>)[k];
      assert.is(r.code, 1, `${what}: ${r.stderr}`);
      assert.match(r.stderr, message, `${what}: ${r.stderr}`);
      assert.is(r.stderr.trim().split('\n').length, 1, `${what}: one line, got ${r.stderr}`);
      assert.is(storeSnapshot(store), before, `${what}: store unchanged`);
    }

    // Recoverable misbehaviour: a 429 storm with Retry-After, a cut body (resumed), a redirect to
    // another host (which must not see Authorization), a slow body.
    reg.faults.rateLimit = { count: 2, retryAfter: '1' };
    const a = await fi(store, [`${reg.host}/team/app:v1`, '--tls-verify=false', '--final-image-tag', 'ratelimited']);
    assert.is(a.code, 0, a.stderr);
    delete reg.faults.rateLimit;
    reg.faults.cutBlob = { after: 50_000, times: 1 };
    reg.faults.redirectBlobs = cdn.url;
    const b = await fi(store, [`${reg.host}/team/app:v1`, '--tls-verify=false', '--final-image-tag', 'cut', '--creds', 'user:secret']);
    assert.is(b.code, 0, b.stderr);
    assert.ok(cdn.requests.length > 0, 'blob came through the other host');
    assert.ok(cdn.requests.every((q) => !q.authorization), 'no Authorization at the blob host');
  } finally {
    await cdn.stop();
    await reg.stop();
    t.remove();
  }
});

test('--format oci: a layout umoci unpacks and skopeo inspects, hashed recursively', async () => {
  if (!havePeer('skopeo') || !havePeer('umoci')) return;
  const t = tempDir();
  const reg = await startBadRegistry();
  try {
    const layout = await makeImage(join(t.path, 'layout'), {
      layers: [{ entries: [{ type: 'file', path: 'hello.txt', content: 'hello\n' }, { type: 'file', path: 'bin/x', content: '#!/bin/sh\n', mode: 0o755 }] }],
    }, 'v1');
    const blobs = join(layout.dir, 'blobs', 'sha256');
    for (const hex of readdirSync(blobs)) reg.addBlob(readFileSync(join(blobs, hex)));
    reg.addManifest('team/oci', layout.images[0]!.manifest, layout.images[0]!.mediaType, ['v1']);
    const store = join(t.path, 's');
    const r = await fi(store, ['--json', `${reg.host}/team/oci:v1`, '--tls-verify=false', '--format', 'oci']);
    assert.is(r.code, 0, r.stderr);
    const pin = JSON.parse(r.stdout.toString()) as { path: string; hash: string; storePath: string };
    assert.match(pin.storePath, /-oci$/);
    const inspect = JSON.parse((await runOk('skopeo', ['inspect', `oci:${pin.path}:v1`])).toString()) as { Digest: string; Layers: string[] };
    assert.is(inspect.Layers.length, 1);
    await runOk('umoci', ['unpack', '--rootless', '--image', `${pin.path}:v1`, join(t.path, 'bundle')]);
    assert.is(readFileSync(join(t.path, 'bundle', 'rootfs', 'hello.txt'), 'utf8'), 'hello\n');
    if (havePeer('nix-hash')) {
      const nix = (await runOk('nix', ['--extra-experimental-features', 'nix-command', 'hash', 'path', pin.path])).toString().trim();
      assert.is(pin.hash, nix, 'the pin is the NAR hash of the layout');
    }
    assert.ok(createHash('sha256'));
  } finally {
    await reg.stop();
    t.remove();
  }
});

test.run();
