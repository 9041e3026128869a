/**
 * The registry client against the real registry (Debian's docker-registry, distribution 2.8):
 * anonymous, htpasswd Basic (with --creds, an auth file and a credential helper), Bearer through
 * store-fixtures/token-server (caching, expiry, renewal after a 401, refresh tokens), TLS with
 * a custom CA, and a multi-arch index resolved per platform — checked against skopeo's choice.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeDispatchers } from '../lib/fetch/index.js';
import { RegistryClient, type RegistryClientOptions } from '../lib/registry/index.js';
import { makeImage, makeIndex, pushImage, type BuiltLayout } from '../store-fixtures/images/index.js';
import { startTokenServer, type TokenServer } from '../store-fixtures/token-server/index.js';
import { rejects } from './helpers/assert.js';
import { havePeer } from './helpers/peers.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';

const FAST = { retries: 1, retryBaseMs: 10 };
const SECRET = 's3cr3t-Pa55';
const have = havePeer('docker-registry') && havePeer('skopeo') && havePeer('htpasswd') && havePeer('openssl');

let tmp: { path: string; remove: () => void };
let multi: BuiltLayout;
let single: BuiltLayout;

function file(dir: string, digest: string): Buffer {
  return readFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)));
}

function noSecret(err: Error): void {
  assert.not.match(err.message, new RegExp(SECRET));
  assert.not.match(err.message, new RegExp(Buffer.from(`alice:${SECRET}`).toString('base64')));
  assert.not.match(err.message, /\n/);
}

test.before(async () => {
  if (!have) return;
  tmp = tempDir();
  const layer = (name: string, text: string) => ({ entries: [{ type: 'dir' as const, path: 'etc' }, { type: 'file' as const, path: `etc/${name}`, content: text }] });
  multi = await makeIndex(join(tmp.path, 'multi'), {
    mediaTypes: 'oci',
    images: [
      { layers: [layer('a', 'amd64\n'), layer('b', 'second\n')], platform: { os: 'linux', architecture: 'amd64' } },
      { layers: [layer('a', 'arm64\n')], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { layers: [layer('a', 'armv7\n')], platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      { layers: [layer('a', 'armv6\n')], platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
    ],
  }, '1.0');
  single = await makeImage(join(tmp.path, 'single'), { mediaTypes: 'docker', layers: [layer('x', 'docker\n')], platform: { os: 'linux', architecture: 'amd64' } });
});

test.after(async () => {
  if (!have) return;
  tmp.remove();
  await closeDispatchers();
});

test('anonymous: a multi-arch index resolves to each platform, same choice as skopeo', async () => {
  if (!have) return;
  const reg = await startRegistry();
  try {
    await pushImage(multi.dir, reg.port, 'library/multi', '1.0');
    await pushImage(single.dir, reg.port, 'library/single', 'latest');
    const opts: RegistryClientOptions = { tlsVerify: false, fetch: FAST, credentials: null };
    const c = new RegistryClient(`${reg.host}/library/multi:1.0`, opts);
    const want = [
      [{ arch: 'amd64' }, 0], [{ arch: 'x86_64' }, 0], [{ arch: 'arm64' }, 1], [{ arch: 'aarch64', variant: 'v8' }, 1],
      [{ arch: 'arm' }, 2], [{ arch: 'armhf' }, 2], [{ arch: 'arm', variant: 'v6' }, 3],
    ] as const;
    for (const [w, i] of want) {
      const r = await c.resolve(w);
      const img = multi.images[i]!;
      assert.is(r.indexDigest, multi.digest);
      assert.is(r.manifestDigest, img.digest, JSON.stringify(w));
      assert.equal(r.manifestBytes, img.manifest);
      assert.equal(r.configBytes, img.config);
      assert.equal(r.layers.map((l) => l.digest), img.layers.map((l) => l.digest));
    }
    // skopeo (what nixpkgs pullImage runs) picks the same manifest for a variant-specific platform.
    const dirOut = join(tmp.path, 'skopeo-dir');
    await runOk('skopeo', ['--override-arch', 'arm', '--override-variant', 'v6', '--override-os', 'linux', 'copy', '--src-tls-verify=false',
      `docker://${reg.host}/library/multi:1.0`, `dir:${dirOut}`]);
    const skopeoManifest = readFileSync(join(dirOut, 'manifest.json'));
    assert.equal(skopeoManifest, (await c.resolve({ arch: 'arm', variant: 'v6' })).manifestBytes);

    // Every layer, downloaded and verified, is byte-identical to the pushed blob.
    const r = await c.resolve({ arch: 'amd64' });
    for (const l of r.layers) {
      const dest = join(tmp.path, l.digest.slice(7));
      await c.fetchBlob(l.digest, l.size, dest);
      assert.equal(readFileSync(dest), file(multi.dir, l.digest));
    }
    // A Docker schema 2 image without an index; the familiar Docker Hub-style name works on a host too.
    const s = await new RegistryClient(`${reg.host}/library/single`, opts).resolve();
    assert.is(s.indexDigest, undefined);
    assert.is(s.manifestDigest, single.digest);
    assert.is(s.manifestMediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(s.configBytes, single.images[0]!.config);
    // Pinned by the platform digest, as nixpkgs pins (#283098).
    const byPlatformDigest = new RegistryClient(`${reg.host}/library/multi:1.0@${multi.images[1]!.digest}`, opts);
    const pinned = await byPlatformDigest.resolve();
    assert.is(pinned.manifestDigest, multi.images[1]!.digest);
    assert.is((await byPlatformDigest.resolve({ arch: 'arm64' })).manifestDigest, multi.images[1]!.digest);
    // That manifest is a single-platform image: asked for as another architecture, it says which it is.
    await rejects(() => byPlatformDigest.resolve({ arch: 'amd64' }), /is a single-platform image for linux\/arm64, not linux\/amd64/);

    await rejects(() => new RegistryClient(`${reg.host}/library/multi:2.0`, opts).resolve(),
      new RegExp(`^manifest ${reg.host}/library/multi:2\\.0: not found \\(HTTP 404: MANIFEST_UNKNOWN: manifest unknown\\)$`));
    await rejects(() => c.resolve({ arch: 'riscv64' }), /no image for platform linux\/riscv64 in sha256:[0-9a-f]{64}; available: linux\/amd64, linux\/arm64, linux\/arm\/v7, linux\/arm\/v6$/);
    await rejects(() => new RegistryClient(`${reg.host}/library/multi:1.0`, { ...opts, tlsVerify: true }).resolve(), /^cannot reach registry .*tls-verify=false/);
  } finally {
    await reg.stop();
  }
});

test('htpasswd Basic: --creds, auth file, credential helper; refusals name no secret', async () => {
  if (!have) return;
  const auth = { username: 'alice', password: SECRET };
  const reg = await startRegistry({ auth });
  try {
    await pushImage(single.dir, reg.port, 'team/app', 'v1', { auth });
    const ref = `${reg.host}/team/app:v1`;
    const base: RegistryClientOptions = { tlsVerify: false, fetch: FAST, env: { PATH: process.env.PATH ?? '', HOME: join(tmp.path, 'nohome') }, home: join(tmp.path, 'nohome') };
    assert.is((await new RegistryClient(ref, { ...base, creds: `alice:${SECRET}` }).resolve()).manifestDigest, single.digest);

    const authFile = join(tmp.path, 'auth.json');
    writeFileSync(authFile, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`alice:${SECRET}`).toString('base64') } } }));
    assert.is((await new RegistryClient(ref, { ...base, env: { ...base.env, REGISTRY_AUTH_FILE: authFile } }).resolve()).manifestDigest, single.digest);

    const bin = join(tmp.path, 'bin');
    const dockerConfig = join(tmp.path, 'docker');
    mkdirSync(bin, { recursive: true });
    mkdirSync(dockerConfig, { recursive: true });
    writeFileSync(join(bin, 'docker-credential-test'), `#!/bin/sh\nread server\n[ "$server" = "${reg.host}" ] || { echo "credentials not found in native keychain"; exit 1; }\necho '{"ServerURL":"${reg.host}","Username":"alice","Secret":"${SECRET}"}'\n`);
    chmodSync(join(bin, 'docker-credential-test'), 0o755);
    writeFileSync(join(dockerConfig, 'config.json'), JSON.stringify({ credHelpers: { [reg.host]: 'test' } }));
    const helperEnv = { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: join(tmp.path, 'nohome'), DOCKER_CONFIG: dockerConfig };
    const viaHelper = await new RegistryClient(ref, { ...base, env: helperEnv }).resolve();
    assert.is(viaHelper.manifestDigest, single.digest);
    const dest = join(tmp.path, 'basic-layer');
    await new RegistryClient(ref, { ...base, env: helperEnv }).fetchBlob(viaHelper.layers[0]!.digest, viaHelper.layers[0]!.size, dest);
    assert.equal(readFileSync(dest), file(single.dir, viaHelper.layers[0]!.digest));

    noSecret(await rejects(() => new RegistryClient(ref, { ...base, creds: `alice:x${SECRET}` }).resolve(),
      /^manifest .*team\/app:v1: HTTP 401 Unauthorized: the registry refused the credentials from --creds: UNAUTHORIZED: authentication required$/));
    noSecret(await rejects(() => new RegistryClient(ref, base).resolve(), /requires authentication \(Basic\) and no credentials were found/));
  } finally {
    await reg.stop();
  }
});

test('TLS with a custom CA', async () => {
  if (!have) return;
  const reg: Registry = await startRegistry({ tls: true });
  try {
    await pushImage(single.dir, reg.url, 'library/tls', 'latest', { ca: reg.cert! });
    const ref = `${reg.host}/library/tls`;
    const r = await new RegistryClient(ref, { caFile: reg.certPath!, fetch: FAST, credentials: null }).resolve();
    assert.is(r.manifestDigest, single.digest);
    await rejects(() => new RegistryClient(ref, { fetch: FAST, credentials: null }).resolve(),
      /^cannot reach registry 127\.0\.0\.1:\d+: GET https:\/\/127\.0\.0\.1:\d+\/v2\/ failed: .*certificate.*\(for a plain-http or self-signed registry: --tls-verify=false, or trust its CA with NIX_SSL_CERT_FILE=ca\.pem or --curl-opts '--cacert ca\.pem'\)$/);
    assert.is((await new RegistryClient(ref, { tlsVerify: false, fetch: FAST, credentials: null }).resolve()).manifestDigest, single.digest);
  } finally {
    await reg.stop();
  }
});

test('Bearer through the token server: cached per scope, renewed on expiry and after a 401', async () => {
  if (!have) return;
  const dataDir = join(tmp.path, 'token-registry');
  mkdirSync(dataDir, { recursive: true });
  // Fill the storage through an open registry, then serve the same storage with token auth.
  const open = await startRegistry({ dataDir });
  try {
    await pushImage(multi.dir, `http://${open.host}`, 'private/multi', 'latest');
  } finally {
    await open.stop();
  }
  const ts: TokenServer = await startTokenServer({ users: { alice: SECRET }, refreshTokens: { 'refresh-me': 'alice' }, anonymousPull: false });
  const reg = await startRegistry({ dataDir, extraConfig: ts.registryAuthConfig() });
  try {
    const ref = `${reg.host}/private/multi:latest`;
    let clock = Date.now();
    const c = new RegistryClient(ref, { tlsVerify: false, fetch: FAST, creds: `alice:${SECRET}`, now: () => clock });
    const r = await c.resolve({ arch: 'arm64' });
    assert.is(r.manifestDigest, multi.images[1]!.digest);
    await c.fetchBlob(r.layers[0]!.digest, r.layers[0]!.size, join(tmp.path, 'bearer-layer'));
    assert.equal(readFileSync(join(tmp.path, 'bearer-layer')), file(multi.dir, r.layers[0]!.digest));
    // One token served the index, the manifest, the config and the layer.
    assert.is(ts.requests.length, 1);
    assert.equal(ts.requests[0]!.scopes, ['repository:private/multi:pull']);
    assert.is(ts.requests[0]!.user, 'alice');
    assert.is(ts.requests[0]!.service, ts.service);

    // Past expires_in (300 s here) a new one is fetched before the request.
    clock += 301_000;
    await c.getManifest(r.manifestDigest);
    assert.is(ts.requests.length, 2);

    // A token the registry refuses (grants nothing) is replaced once, transparently.
    ts.grantNothing(1);
    const fresh = new RegistryClient(ref, { tlsVerify: false, fetch: FAST, creds: `alice:${SECRET}` });
    assert.is((await fresh.resolve({ arch: 'amd64' })).manifestDigest, multi.images[0]!.digest);
    assert.is(ts.requests.length, 4);
    assert.equal(ts.requests[2]!.granted, []);

    // docker's identity (refresh) token goes through the OAuth2 POST.
    const oauth = new RegistryClient(ref, { tlsVerify: false, fetch: FAST, credentials: { username: '', password: '', identityToken: 'refresh-me', source: 'test' } });
    assert.is((await oauth.resolve({ arch: 'amd64' })).manifestDigest, multi.images[0]!.digest);
    assert.is(ts.requests.at(-1)!.method, 'POST');

    // curl's -u is the registry's credentials: the token server gets them as Basic, and nothing
    // else the curl flags carry (a cookie meant for the registry).
    const seen = ts.requests.length;
    const viaCurl = new RegistryClient(ref, { tlsVerify: false, fetch: { ...FAST, curlOpts: `-u alice:${SECRET} -H 'Cookie: registry-only=1'` } });
    assert.is((await viaCurl.resolve({ arch: 'amd64' })).manifestDigest, multi.images[0]!.digest);
    const curlAsked = ts.requests.slice(seen);
    assert.ok(curlAsked.length >= 1 && curlAsked.every((q) => q.user === 'alice' && !q.sentCookie), 'token requests carry -u as Basic and no cookie');

    // Refusals: wrong password (the token server), anonymous (the registry); no secret shown.
    noSecret(await rejects(() => new RegistryClient(ref, { tlsVerify: false, fetch: FAST, creds: `alice:x${SECRET}` }).resolve(),
      new RegExp(`^token server ${ts.realm.replace(/[.]/g, '\\.')} answered HTTP 401: the credentials from --creds were refused \\(UNAUTHORIZED: invalid username or password\\)$`)));
    const before = ts.requests.length;
    noSecret(await rejects(() => new RegistryClient(ref, { tlsVerify: false, fetch: FAST, credentials: null }).resolve(),
      /^manifest .*private\/multi:latest: HTTP 401 Unauthorized: the repository does not exist or needs credentials, and none were found .*: UNAUTHORIZED: authentication required$/));
    const anonymous = ts.requests.slice(before);
    assert.ok(anonymous.length >= 1 && anonymous.every((q) => !q.sentCredentials && q.granted.length === 0), 'anonymous token requests carry no Authorization');
  } finally {
    await reg.stop();
    await ts.stop();
  }
});

test.run();
