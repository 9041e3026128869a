/**
 * The registry client against store-fixtures/bad-registry: index resolution (attestations,
 * nested indexes, the no-platform error), verified blobs, and every fault giving a one-line
 * error — with no credentials in any message and none sent to a redirect host.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeDispatchers } from '../lib/fetch/index.js';
import { RegistryClient, type RegistryClientOptions } from '../lib/registry/index.js';
import { addImage, startBadRegistry, startBlobHost, type BadRegistry } from '../store-fixtures/bad-registry/index.js';
import { rejects } from './helpers/assert.js';
import { tempDir } from './helpers/tmp.js';

const SECRET = 'pa55-w0rd-xyzzy';
const FAST = { retries: 2, retryBaseMs: 10 };

let reg: BadRegistry;
let tmp: { path: string; remove: () => void };
let indexDigest = '';
let nestedDigest = '';
let amd64: ReturnType<typeof addImage>;
let arm64: ReturnType<typeof addImage>;
const bigLayer = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) & 0xff));

function client(ref: string, opts: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient(ref, { tlsVerify: false, creds: `alice:${SECRET}`, ...opts, fetch: { ...FAST, ...opts.fetch } });
}

function noCredentials(err: Error): void {
  assert.not.match(err.message, new RegExp(SECRET));
  assert.not.match(err.message, new RegExp(Buffer.from(`alice:${SECRET}`).toString('base64')));
  assert.not.match(err.message, /\n/);
}

test.before(async () => {
  tmp = tempDir();
  reg = await startBadRegistry({ basicAuth: { username: 'alice', password: SECRET } });
  amd64 = addImage(reg, 'app', { layers: [bigLayer, 'second layer'] });
  arm64 = addImage(reg, 'app', { layers: ['arm layer'], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, oci: true });
  const attestation = addImage(reg, 'app', { layers: ['{"in-toto":1}'], platform: { os: 'unknown', architecture: 'unknown' } });
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: attestation.digest, size: attestation.size, platform: { os: 'unknown', architecture: 'unknown' },
        annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': amd64.digest } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: amd64.digest, size: amd64.size, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: arm64.digest, size: arm64.size, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ],
  });
  indexDigest = reg.addManifest('app', index, 'application/vnd.oci.image.index.v1+json', ['latest']).digest;
  // An index whose only entry is another index without a platform (as some tools nest them).
  const outer = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: indexDigest, size: Buffer.byteLength(index) }] });
  nestedDigest = reg.addManifest('app', outer, 'application/vnd.oci.image.index.v1+json', ['nested']).digest;
  // A Docker manifest list whose entry claims the wrong size.
  const lying = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: amd64.digest, size: amd64.size + 1, platform: { os: 'linux', architecture: 'amd64' } }] });
  reg.addManifest('app', lying, 'application/vnd.docker.distribution.manifest.list.v2+json', ['lying']);
});

test.after(async () => {
  await reg.stop();
  tmp.remove();
  await closeDispatchers();
});

test.before.each(() => {
  for (const k of Object.keys(reg.faults)) delete (reg.faults as Record<string, unknown>)[k];
  reg.requests.length = 0;
});

test('resolves an index per platform, skipping attestations, exposing both digests', async () => {
  const c = client(`${reg.host}/app:latest`);
  const r = await c.resolve({ os: 'linux', arch: 'x86_64' });
  assert.is(r.indexDigest, indexDigest);
  assert.is(r.manifestDigest, amd64.digest);
  assert.is(r.configDigest, amd64.config.digest);
  assert.equal(r.configBytes, reg.blob(amd64.config.digest));
  assert.equal(r.manifestBytes, reg.blob(amd64.digest));
  assert.equal(r.layers.map((l) => l.digest), amd64.layers.map((l) => l.digest));
  assert.equal(r.platform, { os: 'linux', architecture: 'amd64', variant: '' });
  assert.is(r.config.architecture, 'amd64');

  const a = await c.resolve({ arch: 'aarch64' });
  assert.is(a.manifestDigest, arm64.digest);
  assert.equal(a.platform, { os: 'linux', architecture: 'arm64', variant: '' });

  const nested = await client(`${reg.host}/app:nested`).resolve({ arch: 'arm64' });
  assert.is(nested.manifestDigest, arm64.digest);
  assert.is(nested.indexDigest, nestedDigest);

  // A single-platform image asked for by another architecture names its own; without a platform it is taken as it is.
  await rejects(() => client(`${reg.host}/app@${amd64.digest}`).resolve({ arch: 'arm64' }),
    new RegExp(`^${reg.host}/app@${amd64.digest} is a single-platform image for linux/amd64, not linux/arm64; pull it without a platform to take it as it is$`));
  const byDigest = await client(`${reg.host}/app@${amd64.digest}`).resolve();
  assert.is(byDigest.indexDigest, undefined, 'a single manifest has no index');
  assert.is(byDigest.manifestDigest, amd64.digest);

  const err = await rejects(() => c.resolve({ os: 'linux', arch: 's390x' }),
    new RegExp(`^${reg.host}/app:latest: no image for platform linux/s390x in ${indexDigest}; available: linux/amd64, linux/arm64$`));
  noCredentials(err);
  assert.ok(reg.requests.every((q) => q.path === '/v2/' || q.authorization), 'credentials sent to the registry');
});

test('blobs: verified file and stream; bytes equal what the registry holds', async () => {
  const c = client(`${reg.host}/app`);
  const dest = join(tmp.path, 'layer0');
  const got = await c.fetchBlob(amd64.layers[0]!.digest, amd64.layers[0]!.size, dest);
  assert.is(got.size, bigLayer.length);
  assert.equal(readFileSync(dest), bigLayer);
  const chunks: Buffer[] = [];
  for await (const ch of await c.openBlob({ digest: amd64.layers[1]!.digest, size: amd64.layers[1]!.size })) chunks.push(ch as Buffer);
  assert.is(Buffer.concat(chunks).toString(), 'second layer');
});

async function failsCleanly(run: () => Promise<unknown>, message: RegExp): Promise<Error> {
  const before = readdirSync(tmp.path).length;
  const err = await rejects(run, message);
  noCredentials(err);
  assert.is(readdirSync(tmp.path).length, before, 'nothing left behind');
  return err;
}

test('fault: wrong manifest digest', async () => {
  reg.faults.manifestDigest = true;
  await failsCleanly(() => client(`${reg.host}/app@${amd64.digest}`).resolve(),
    new RegExp(`^manifest ${reg.host}/app@${amd64.digest}: digest mismatch: expected ${amd64.digest}, got sha256:[0-9a-f]{64}$`));
  // Through an index the child is fetched by digest and refused the same way.
  await failsCleanly(() => client(`${reg.host}/app:latest`).resolve({ arch: 'amd64' }), /app@sha256:[0-9a-f]{64}: digest mismatch/);
});

test('fault: manifest size differs from the parent descriptor', async () => {
  await failsCleanly(() => client(`${reg.host}/app:lying`).resolve({ arch: 'amd64' }),
    new RegExp(`^manifest ${reg.host}/app@${amd64.digest}: size mismatch: expected ${amd64.size + 1} bytes, got ${amd64.size}$`));
});

test('fault: wrong blob digest leaves nothing behind', async () => {
  reg.faults.blobDigest = true;
  const dest = join(tmp.path, 'bad-digest');
  const l = amd64.layers[0]!;
  await failsCleanly(() => client(`${reg.host}/app`).fetchBlob(l.digest, l.size, dest),
    new RegExp(`^blob ${l.digest} of ${reg.host}/app: digest mismatch: expected ${l.digest}, got sha256:[0-9a-f]{64}$`));
  assert.not.ok(existsSync(dest));
  // The config is checked too.
  await failsCleanly(() => client(`${reg.host}/app:latest`).resolve({ arch: 'amd64' }), /^config sha256:[0-9a-f]{64} of .*: digest mismatch/);
});

test('fault: truncated and oversized blobs', async () => {
  const l = amd64.layers[0]!;
  const c = client(`${reg.host}/app`);
  reg.faults.truncatedBlob = true;
  await failsCleanly(() => c.fetchBlob(l.digest, l.size, join(tmp.path, 't')),
    new RegExp(`^blob ${l.digest} of ${reg.host}/app: size mismatch: the server announces ${l.size >> 1} bytes, expected ${l.size}$`));
  reg.faults.truncatedBlob = false;
  reg.faults.oversizedBlob = { extra: 10 };
  await failsCleanly(() => c.fetchBlob(l.digest, l.size, join(tmp.path, 'o')), /size mismatch: the server announces 300010 bytes, expected 300000$/);
  reg.faults.oversizedBlob = { extra: 1_000_000, chunked: true };
  await failsCleanly(() => c.fetchBlob(l.digest, l.size, join(tmp.path, 'o2')), /size mismatch: more than the expected 300000 bytes$/);
  // Unknown size (no descriptor): the digest still catches a wrong body.
  await failsCleanly(() => c.fetchBlob(l.digest, undefined, join(tmp.path, 'o3')), /digest mismatch/);
});

test('cut connections resume with Range, or restart when Range is ignored', async () => {
  const l = amd64.layers[0]!;
  const c = client(`${reg.host}/app`);
  reg.faults.cutBlob = { after: 100_000, times: 2 };
  const dest = join(tmp.path, 'resumed');
  await c.fetchBlob(l.digest, l.size, dest);
  assert.equal(readFileSync(dest), bigLayer);
  const ranges = reg.requests.filter((q) => q.path.endsWith(l.digest)).map((q) => q.range);
  assert.equal(ranges, [undefined, 'bytes=100000-', 'bytes=200000-']);

  reg.requests.length = 0;
  reg.faults.cutBlob = { after: 100_000, times: 1 };
  reg.faults.ignoreRange = true;
  const dest2 = join(tmp.path, 'restarted');
  await c.fetchBlob(l.digest, l.size, dest2);
  assert.equal(readFileSync(dest2), bigLayer);
  // The stream form skips what it already delivered instead.
  reg.faults.cutBlob = { after: 100_000, times: 1 };
  const chunks: Buffer[] = [];
  for await (const ch of await c.openBlob({ digest: l.digest, size: l.size })) chunks.push(ch as Buffer);
  assert.equal(Buffer.concat(chunks), bigLayer);
});

test('429 storms: Retry-After is honoured, then the error says so', async () => {
  const c = client(`${reg.host}/app@${amd64.digest}`);
  reg.faults.rateLimit = { count: 1, retryAfter: '1' };
  const t0 = Date.now();
  const m = await c.getManifest(amd64.digest);
  assert.ok(Date.now() - t0 >= 950, `waited ${Date.now() - t0} ms`);
  assert.is(m.digest, amd64.digest);
  reg.faults.rateLimit = { count: 100, retryAfter: '0' };
  await failsCleanly(() => c.getManifest(amd64.digest),
    new RegExp(`^manifest ${reg.host}/app@${amd64.digest}: HTTP 429 Too Many Requests \\(rate limited, ratelimit-remaining 0;w=21600; retries exhausted\\): TOOMANYREQUESTS: too many requests$`));
  reg.faults.rateLimit = { count: 100, retryAfter: '0' };
  const l = amd64.layers[1]!;
  await failsCleanly(() => c.fetchBlob(l.digest, l.size, join(tmp.path, 'rl')), /^blob sha256:[0-9a-f]{64} of .*app: download of .* failed: HTTP 429 Too Many Requests \(after 2 retries\)$/);
});

test('blob redirects to another host carry no Authorization', async () => {
  const cdn = await startBlobHost(reg);
  try {
    reg.faults.redirectBlobs = cdn.url;
    const r = await client(`${reg.host}/app:latest`).resolve({ arch: 'amd64' });
    const l = r.layers[0]!;
    const dest = join(tmp.path, 'via-cdn');
    await client(`${reg.host}/app`).fetchBlob(l.digest, l.size, dest);
    assert.equal(readFileSync(dest), bigLayer);
    assert.ok(cdn.requests.length >= 2, 'config and layer came from the CDN');
    assert.ok(cdn.requests.every((q) => !q.authorization), 'no Authorization or Cookie reached the redirect host');
    assert.ok(reg.requests.filter((q) => q.path.includes('/blobs/')).every((q) => q.authorization), 'the registry got its credentials');
    // A CDN that fails is reported against the blob.
    reg.faults.redirectBlobs = `${cdn.url}/nowhere`;
    await failsCleanly(() => client(`${reg.host}/app`).fetchBlob(l.digest, l.size, join(tmp.path, 'x')), /^blob .* of .*: not found \(HTTP 404\)$/);
  } finally {
    await cdn.stop();
  }
});

test('fault: huge manifest refused', async () => {
  reg.faults.hugeManifest = 5 * 1024 * 1024;
  await failsCleanly(() => client(`${reg.host}/app:latest`).resolve(),
    new RegExp(`^manifest ${reg.host}/app:latest: 5242880 bytes is larger than the 4194304-byte limit for manifests$`));
});

test('fault: schema 1 manifest', async () => {
  reg.faults.schema1 = true;
  await failsCleanly(() => client(`${reg.host}/app:old`).resolve(),
    new RegExp(`^schema 1 manifests are not supported: manifest ${reg.host}/app:old \\(Docker deprecated them; push the image again with a current client\\)$`));
});

test('fault: slow body hits the stall timeout', async () => {
  reg.faults.slowBody = { pauseMs: 1500 };
  const l = amd64.layers[0]!;
  await failsCleanly(() => client(`${reg.host}/app`, { fetch: { retries: 0, stallTimeoutMs: 300 } }).fetchBlob(l.digest, l.size, join(tmp.path, 's')),
    /^blob sha256:[0-9a-f]{64} of .*: download of .* failed: stalled: no data received within the stall timeout$/);
});

test('errors: not found, plain-text bodies, wrong or missing credentials', async () => {
  await failsCleanly(() => client(`${reg.host}/app:nope`).resolve(),
    new RegExp(`^manifest ${reg.host}/app:nope: not found \\(HTTP 404: MANIFEST_UNKNOWN: manifest unknown\\)$`));
  reg.faults.plainTextErrors = true;
  await failsCleanly(() => client(`${reg.host}/app:nope`).resolve(), /not found \(HTTP 404: manifest unknown\)$/);
  reg.faults.plainTextErrors = false;
  await failsCleanly(() => client(`${reg.host}/app:latest`, { creds: `alice:wrong-${SECRET}` }).resolve(),
    new RegExp(`^manifest ${reg.host}/app:latest: HTTP 401 Unauthorized: the registry refused the credentials from --creds: UNAUTHORIZED: authentication required$`));
  await failsCleanly(() => client(`${reg.host}/app:latest`, { credentials: null }).resolve(),
    /^registry 127\.0\.0\.1:\d+ requires authentication \(Basic\) and no credentials were found/);
  // tls-verify on: no fallback to plain http, and a hint.
  await failsCleanly(() => client(`${reg.host}/app:latest`, { tlsVerify: true }).resolve(),
    /^cannot reach registry 127\.0\.0\.1:\d+: GET https:\/\/127\.0\.0\.1:\d+\/v2\/ failed: .*\(for a plain-http or self-signed registry: --tls-verify=false, or trust its CA with NIX_SSL_CERT_FILE=ca\.pem or --curl-opts '--cacert ca\.pem'\)$/);
});

test.run();
