import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { request } from 'node:https';
import { join } from 'node:path';
import { makeImage, pushImage } from '../store-fixtures/images/index.js';
import { havePeer } from './helpers/peers.js';
import { startRegistry } from './helpers/registry.js';
import { run, runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';

// The registry helper and the fixture pusher, against the real docker-registry.

const SMALL = { layers: [{ entries: [{ type: 'file' as const, path: 'f', content: 'x\n' }] }] };

test('fixtures are reproducible: same spec, same digests (gzip and zstd)', async () => {
  if (!havePeer('zstd')) return;
  const tmp = tempDir();
  try {
    const spec = {
      layers: [
        { entries: [{ type: 'dir' as const, path: 'd' }, { type: 'random' as const, path: 'd/r', size: 100_000, seed: 9 }] },
        { compression: 'zstd' as const, entries: [{ type: 'symlink' as const, path: 'l', target: 'd/r' }] },
      ],
    };
    const a = await makeImage(join(tmp.path, 'a'), spec);
    const b = await makeImage(join(tmp.path, 'b'), spec);
    assert.is(a.digest, b.digest);
    assert.equal(a.images[0]!.layers, b.images[0]!.layers);
  } finally {
    tmp.remove();
  }
});

test('plain registry: push keeps the generated manifest bytes; stop() frees the port', async () => {
  if (!havePeer('docker-registry')) return;
  const tmp = tempDir();
  const reg = await startRegistry();
  try {
    const built = await makeImage(join(tmp.path, 'img'), { ...SMALL, mediaTypes: 'docker', pretty: true }, 't');
    const digest = await pushImage(built.dir, reg.port, 'ns/name', 't');
    assert.is(digest, built.digest);
    const res = await fetch(`${reg.url}/v2/ns/name/manifests/t`, { headers: { accept: built.mediaType } });
    assert.is(res.headers.get('docker-content-digest'), built.digest);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(built.images[0]!.manifest));
    // Pushing again is a no-op for blobs (HEAD finds them) and re-tags fine.
    assert.is(await pushImage(built.dir, reg.url, 'ns/name', 'again', { sourceTag: 't' }), built.digest);
  } finally {
    await reg.stop();
    tmp.remove();
  }
  const after = await fetch(`${reg.url}/v2/`).then(() => 'answered', () => 'refused');
  assert.is(after, 'refused');
});

test('basic auth + TLS: anonymous is refused, credentials and the CA work for pushImage and skopeo', async () => {
  if (!havePeer('docker-registry') || !havePeer('htpasswd') || !havePeer('openssl')) return;
  const tmp = tempDir();
  const auth = { username: 'alice', password: 's3cret pass' };
  const reg = await startRegistry({ auth, tls: true });
  try {
    assert.match(reg.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const status = (headers: Record<string, string>) => new Promise<number>((resolve, reject) => {
      request(`${reg.url}/v2/`, { ca: reg.cert!, headers }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject).end();
    });
    assert.is(await status({}), 401);
    assert.is(await status({ authorization: `Basic ${Buffer.from('alice:wrong').toString('base64')}` }), 401);
    assert.is(await status({ authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` }), 200);

    const built = await makeImage(join(tmp.path, 'img'), SMALL, 'v1');
    try {
      await pushImage(built.dir, reg.url, 'library/secret', 'v1', { ca: reg.cert! });
      assert.unreachable('anonymous push accepted');
    } catch (e) {
      assert.match(String(e), /401/);
    }
    await pushImage(built.dir, reg.url, 'library/secret', 'v1', { ca: reg.cert!, auth });

    if (!havePeer('skopeo')) return;
    const certDir = join(tmp.path, 'certs');
    await runOk('mkdir', ['-p', certDir]);
    await runOk('cp', [reg.certPath!, join(certDir, 'ca.crt')]);
    const ref = `docker://${reg.host}/library/secret:v1`;
    const anonymous = await run('skopeo', ['inspect', '--cert-dir', certDir, ref]);
    assert.is.not(anonymous.code, 0);
    const untrusted = await run('skopeo', ['inspect', '--creds', `${auth.username}:${auth.password}`, ref]);
    assert.match(untrusted.stderr, /certificate/);
    const info = JSON.parse((await runOk('skopeo', ['inspect', '--cert-dir', certDir, '--creds', `${auth.username}:${auth.password}`, ref])).toString()) as { Digest: string };
    assert.is(info.Digest, built.digest);
  } finally {
    await reg.stop();
    tmp.remove();
  }
});

test.run();
