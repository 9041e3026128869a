/**
 * Pure parts of lib/registry: reference normalisation (Docker's own test cases), platform
 * selection, manifest parsing, WWW-Authenticate parsing, credentials lookup (with a fake
 * docker-credential helper on PATH) and the jobs limiter.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  MANIFEST_ACCEPT, availablePlatforms, authFilePaths, findCredentials, formatReference, limitConcurrency, normalizeAuthKey,
  normalizePlatform, parseManifest, parsePlatform, parseReference, parseWwwAuthenticate, selectPlatform, verifyBytes,
  platformNamed, platformOptions, platformSatisfies, variantNamed, wantedPlatform, type IndexEntry,
} from '../lib/registry/index.js';
import { rejects } from './helpers/assert.js';
import { tempDir } from './helpers/tmp.js';

const D = `sha256:${'a'.repeat(64)}`;

// [input, fully normalised name, familiar name, tag, digest, api host]
const VALID: Array<[string, string, string, string | undefined, string | undefined, string]> = [
  ['ubuntu', 'docker.io/library/ubuntu', 'ubuntu', 'latest', undefined, 'registry-1.docker.io'],
  ['ubuntu:22.04', 'docker.io/library/ubuntu', 'ubuntu', '22.04', undefined, 'registry-1.docker.io'],
  ['library/ubuntu', 'docker.io/library/ubuntu', 'ubuntu', 'latest', undefined, 'registry-1.docker.io'],
  ['docker.io/ubuntu', 'docker.io/library/ubuntu', 'ubuntu', 'latest', undefined, 'registry-1.docker.io'],
  ['docker.io/library/ubuntu', 'docker.io/library/ubuntu', 'ubuntu', 'latest', undefined, 'registry-1.docker.io'],
  ['index.docker.io/ubuntu', 'docker.io/library/ubuntu', 'ubuntu', 'latest', undefined, 'registry-1.docker.io'],
  ['index.docker.io/docker/docker', 'docker.io/docker/docker', 'docker/docker', 'latest', undefined, 'registry-1.docker.io'],
  ['docker/docker', 'docker.io/docker/docker', 'docker/docker', 'latest', undefined, 'registry-1.docker.io'],
  ['fooo/bar', 'docker.io/fooo/bar', 'fooo/bar', 'latest', undefined, 'registry-1.docker.io'],
  ['other/library', 'docker.io/other/library', 'other/library', 'latest', undefined, 'registry-1.docker.io'],
  ['docker.io/library/foo/bar', 'docker.io/library/foo/bar', 'library/foo/bar', 'latest', undefined, 'registry-1.docker.io'],
  ['test_com/foo', 'docker.io/test_com/foo', 'test_com/foo', 'latest', undefined, 'registry-1.docker.io'],
  ['test.com/foo', 'test.com/foo', 'test.com/foo', 'latest', undefined, 'test.com'],
  ['test.com:8080/foo', 'test.com:8080/foo', 'test.com:8080/foo', 'latest', undefined, 'test.com:8080'],
  ['test-com:8080/foo', 'test-com:8080/foo', 'test-com:8080/foo', 'latest', undefined, 'test-com:8080'],
  ['xn--n3h.com/foo', 'xn--n3h.com/foo', 'xn--n3h.com/foo', 'latest', undefined, 'xn--n3h.com'],
  ['localhost/privatebase', 'localhost/privatebase', 'localhost/privatebase', 'latest', undefined, 'localhost'],
  ['localhost:8000/private/moonbase', 'localhost:8000/private/moonbase', 'localhost:8000/private/moonbase', 'latest', undefined, 'localhost:8000'],
  ['127.0.0.1:5000/library/debian', '127.0.0.1:5000/library/debian', '127.0.0.1:5000/library/debian', 'latest', undefined, '127.0.0.1:5000'],
  ['127.0.0.1:5000/debian', '127.0.0.1:5000/debian', '127.0.0.1:5000/debian', 'latest', undefined, '127.0.0.1:5000'],
  ['192.168.0.1', 'docker.io/library/192.168.0.1', '192.168.0.1', 'latest', undefined, 'registry-1.docker.io'],
  ['192.168.0.1:80', 'docker.io/library/192.168.0.1', '192.168.0.1', '80', undefined, 'registry-1.docker.io'],
  ['192.168.0.1:8/debian', '192.168.0.1:8/debian', '192.168.0.1:8/debian', 'latest', undefined, '192.168.0.1:8'],
  ['localhost:5000', 'docker.io/library/localhost', 'localhost', '5000', undefined, 'registry-1.docker.io'],
  ['[fc00::1]:5000/docker/docker', '[fc00::1]:5000/docker/docker', '[fc00::1]:5000/docker/docker', 'latest', undefined, '[fc00::1]:5000'],
  ['a__b/c.d-e---f', 'docker.io/a__b/c.d-e---f', 'a__b/c.d-e---f', 'latest', undefined, 'registry-1.docker.io'],
  [`docker.io/${'1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a'}`, 'docker.io/library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a', '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a', 'latest', undefined, 'registry-1.docker.io'],
  [`ubuntu@${D}`, 'docker.io/library/ubuntu', 'ubuntu', undefined, D, 'registry-1.docker.io'],
  // A tag beside a digest is kept for display; the digest is what gets fetched.
  [`ubuntu:22.04@${D}`, 'docker.io/library/ubuntu', 'ubuntu', '22.04', D, 'registry-1.docker.io'],
  [`localhost:5000/a/b:t_1.x-y@${D}`, 'localhost:5000/a/b', 'localhost:5000/a/b', 't_1.x-y', D, 'localhost:5000'],
  [`x:${'T'.repeat(128)}`, 'docker.io/library/x', 'x', 'T'.repeat(128), undefined, 'registry-1.docker.io'],
];

test('references normalise as docker does', () => {
  for (const [input, name, familiar, tag, digest, api] of VALID) {
    const r = parseReference(input);
    assert.is(r.name, name, input);
    assert.is(r.familiarName, familiar, input);
    assert.is(r.tag, tag, input);
    assert.is(r.digest, digest, input);
    assert.is(r.apiHost, api, input);
    assert.is(r.manifestRef, digest ?? tag, input);
    assert.is(r.credentialsKey, r.domain === 'docker.io' ? 'https://index.docker.io/v1/' : r.domain, input);
  }
  assert.is(formatReference(parseReference('ubuntu')), 'docker.io/library/ubuntu:latest');
  assert.is(formatReference(parseReference('ubuntu'), true), 'ubuntu:latest');
  assert.is(formatReference(parseReference(`ubuntu@${D}`)), `docker.io/library/ubuntu@${D}`);
});

const INVALID: Array<[string, RegExp]> = [
  ['', /empty/],
  ['https://github.com/docker/docker', /URL scheme/],
  ['docker/Docker', /must be lowercase/],
  ['Docker/docker', /must be lowercase/],
  ['docker.io/docker/Docker', /must be lowercase/],
  ['-docker', /invalid path component '-docker'/],
  ['-docker/docker', /invalid path component/],
  ['-docker.io/docker/docker', /invalid registry host '-docker.io'/],
  ['docker///docker', /empty path component/],
  ['docker.io/docker///docker', /empty path component/],
  ['foo/', /empty path component/],
  ['fc00::1:5000/debian', /invalid registry host/],
  ['[fc00::1]:5000', /invalid tag|invalid path component/],
  ['1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a', /64-byte hexadecimal/],
  ['ubuntu:', /invalid tag ''/],
  ['ubuntu:-x', /invalid tag '-x'/],
  ['ubuntu:.x', /invalid tag '.x'/],
  [`ubuntu:${'a'.repeat(129)}`, /invalid tag/],
  ['ubuntu@sha256:abc', /sha256 needs 64 lowercase hex/],
  [`ubuntu@sha256:${'A'.repeat(64)}`, /lowercase hex/],
  [`ubuntu@md5:${'a'.repeat(32)}`, /unsupported algorithm 'md5'/],
  ['ubuntu@', /expected <algorithm>:<hex>/],
  ['foo bar', /whitespace/],
  ['a/b:c/d', /invalid path component|invalid tag/],
  [`example.com/${'a'.repeat(250)}`, /not be more than 255 characters/],
];

test('invalid references give one-line errors naming the input', () => {
  for (const [input, why] of INVALID) {
    let err: Error | undefined;
    try {
      parseReference(input);
    } catch (e) {
      err = e as Error;
    }
    assert.ok(err, `accepted: ${input}`);
    assert.match(err!.message, why, input);
    assert.ok(err!.message.startsWith(`invalid image reference '${input}'`), err!.message);
    assert.not.match(err!.message, /\n/);
  }
});

test('platform normalisation follows containerd', () => {
  const n = (a: string, v = '') => {
    const p = normalizePlatform({ os: 'Linux', architecture: a, variant: v });
    return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
  };
  assert.is(n('x86_64'), 'linux/amd64');
  assert.is(n('x86-64'), 'linux/amd64');
  assert.is(n('amd64', 'v1'), 'linux/amd64');
  assert.is(n('aarch64'), 'linux/arm64');
  assert.is(n('arm64', 'v8'), 'linux/arm64');
  assert.is(n('arm64', '8'), 'linux/arm64');
  assert.is(n('arm64', 'v9.0'), 'linux/arm64/v9');
  assert.is(n('armhf'), 'linux/arm/v7');
  assert.is(n('armel'), 'linux/arm/v6');
  assert.is(n('arm'), 'linux/arm/v7');
  assert.is(n('arm', '6'), 'linux/arm/v6');
  assert.is(n('i386'), 'linux/386');
  assert.is(n('ppc64le'), 'linux/ppc64le');
  assert.equal(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.equal(wantedPlatform({ arch: 'aarch64' }), { os: 'linux', architecture: 'arm64', variant: '' });
  assert.equal(wantedPlatform({ arch: 'arm/v6' }), { os: 'linux', architecture: 'arm', variant: 'v6' });
  assert.is(wantedPlatform().os, 'linux');
  assert.is(wantedPlatform().architecture, process.arch === 'x64' ? 'amd64' : wantedPlatform().architecture);
  assert.throws(() => parsePlatform('linux'), /expected os\/arch/);
  assert.throws(() => wantedPlatform({ arch: 'arm/v7', variant: 'v6' }), /conflicts/);
});

const M = 'application/vnd.oci.image.manifest.v1+json';
const entry = (digestChar: string, os: string, architecture: string, variant?: string, extra: Partial<IndexEntry> = {}): IndexEntry =>
  ({ mediaType: M, digest: `sha256:${digestChar.repeat(64)}`, platform: { os, architecture, ...(variant ? { variant } : {}) }, ...extra });

test('platform selection: first match in preference order, attestations skipped', () => {
  const entries: IndexEntry[] = [
    entry('1', 'unknown', 'unknown', undefined, { annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': 'sha256:x' } }),
    entry('2', 'linux', 'amd64'),
    entry('3', 'linux', 'arm64', 'v8'),
    entry('4', 'linux', 'arm', 'v6'),
    entry('5', 'linux', 'arm', 'v7'),
    entry('6', 'windows', 'amd64'),
    entry('7', 'linux', 'amd64'),
    { mediaType: 'application/vnd.example.unknown', digest: `sha256:${'8'.repeat(64)}`, platform: { os: 'linux', architecture: 's390x' } },
  ];
  const ok = (e: IndexEntry) => e.mediaType === M;
  const pick = (w: Parameters<typeof wantedPlatform>[0]) => selectPlatform(entries, wantedPlatform(w), ok)?.digest[7];
  assert.is(pick({ arch: 'amd64' }), '2');
  assert.is(pick({ arch: 'x86_64' }), '2');
  assert.is(pick({ arch: 'arm64' }), '3');
  assert.is(pick({ arch: 'aarch64', variant: 'v8' }), '3');
  assert.is(pick({ arch: 'arm', variant: 'v7' }), '5');
  assert.is(pick({ arch: 'armhf' }), '5');
  assert.is(pick({ arch: 'arm', variant: 'v6' }), '4');
  // v8 is not there: the newest compatible older variant is chosen.
  assert.is(pick({ arch: 'arm', variant: 'v8' }), '5');
  assert.is(pick({ arch: 'arm', variant: 'v5' }), undefined);
  assert.is(pick({ os: 'windows', arch: 'amd64' }), '6');
  assert.is(pick({ arch: 's390x' }), undefined);
  assert.is(pick({ os: 'unknown', arch: 'unknown' }), undefined);
  assert.equal(availablePlatforms(entries), ['linux/amd64', 'linux/arm64', 'linux/arm/v6', 'linux/arm/v7', 'windows/amd64', 'linux/s390x']);
  // A variant-less entry serves a request for the variant when nothing better exists.
  assert.is(selectPlatform([entry('9', 'linux', 'arm64')], wantedPlatform({ arch: 'arm64', variant: 'v9' }), ok)?.digest[7], '9');
});

test('platform options: --platform merged with --os/--arch/--variant; exact variants; single-platform match', () => {
  assert.equal(platformOptions({ platform: 'linux/arm/v7' }), { os: 'linux', arch: 'arm', variant: 'v7' });
  assert.equal(platformOptions({ platform: 'linux/arm64', arch: 'aarch64' }), { os: 'linux', arch: 'arm64' }, 'agreeing after normalisation');
  assert.equal(platformOptions({ platform: 'linux/arm', variant: 'v6' }), { os: 'linux', arch: 'arm', variant: 'v6' }, '--variant completes a platform without one');
  assert.equal(platformOptions({ arch: 'arm64' }), { arch: 'arm64' });
  assert.throws(() => platformOptions({ platform: 'linux/arm64', arch: 'amd64' }), /--platform linux\/arm64 conflicts with --arch amd64/);
  assert.throws(() => platformOptions({ platform: 'linux/arm/v7', variant: 'v6' }), /conflicts with --variant v6/);
  assert.throws(() => platformOptions({ platform: 'windows/amd64', os: 'linux' }), /conflicts with --os linux/);
  assert.throws(() => platformOptions({ platform: 'linux' }), /expected os\/arch or os\/arch\/variant/);
  const entries = [entry('4', 'linux', 'arm', 'v6'), entry('5', 'linux', 'arm', 'v7')];
  const ok = (e: IndexEntry) => e.mediaType === M;
  assert.is(selectPlatform(entries, wantedPlatform({ arch: 'arm', variant: 'v8' }), ok)?.digest[7], '5', 'compatible fallback by default');
  assert.is(selectPlatform(entries, wantedPlatform({ arch: 'arm', variant: 'v8' }), ok, { exactVariant: true }), undefined);
  assert.ok(variantNamed({ arch: 'arm/v7' }) && variantNamed({ variant: 'v7' }) && !variantNamed({ arch: 'armhf' }));
  const amd64 = { os: 'linux', architecture: 'amd64', variant: '' };
  assert.ok(platformSatisfies(amd64, { arch: 'x86_64' }));
  assert.not.ok(platformSatisfies(amd64, { arch: 'arm64' }));
  assert.not.ok(platformSatisfies({ os: 'linux', architecture: 'arm', variant: 'v6' }, { arch: 'arm', variant: 'v7' }));
  assert.ok(platformSatisfies({ os: 'linux', architecture: 'arm', variant: 'v6' }, { arch: 'arm' }), 'variant compared only when named');
  assert.ok(platformNamed({ os: 'linux' }) && !platformNamed({}));
});

test('manifests: kinds, media type detection, schema 1 refused, verification', () => {
  const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D, size: 3 };
  const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D, size: 2 };
  const img = Buffer.from(JSON.stringify({ schemaVersion: 2, config, layers: [layer] }));
  const m = parseManifest(img, 'm');
  assert.is(m.kind, 'manifest');
  assert.is(m.mediaType, M);
  const idx = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ ...layer, mediaType: M, platform: { os: 'linux', architecture: 'amd64' } }] })), 'i');
  assert.is(idx.kind, 'index');
  const docker = parseManifest(img, 'd', { contentType: 'application/vnd.docker.distribution.manifest.v2+json; charset=utf-8' });
  assert.is(docker.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":1,"name":"x","fsLayers":[]}'), 'manifest x:latest'), /^schema 1 manifests are not supported: manifest x:latest/);
  assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":2}'), 'mx', { contentType: 'application/vnd.docker.distribution.manifest.v1+prettyjws' }), /schema 1 manifests are not supported/);
  assert.throws(() => parseManifest(Buffer.from('nope'), 'mx'), /mx: not valid JSON/);
  assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":2,"mediaType":"text/plain"}'), 'mx'), /unsupported manifest media type 'text\/plain'/);
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config: { ...config, size: -1 }, layers: [] })), 'mx'), /mx: config: invalid size/);
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config: { ...config, digest: 'sha256:zz' }, layers: [] })), 'mx'), /invalid digest/);
  const good = verifyBytes(img, {}, 'x');
  assert.is(verifyBytes(img, { digest: good, size: img.length }, 'x'), good);
  assert.throws(() => verifyBytes(img, { digest: D }, 'manifest y'), /^manifest y: digest mismatch: expected sha256:a{64}, got sha256:/);
  assert.throws(() => verifyBytes(img, { size: 1 }, 'manifest y'), /size mismatch: expected 1 bytes, got/);
  assert.match(MANIFEST_ACCEPT, /application\/vnd\.oci\.image\.index\.v1\+json, application\/vnd\.oci\.image\.manifest\.v1\+json, application\/vnd\.docker\.distribution\.manifest\.list\.v2\+json, application\/vnd\.docker\.distribution\.manifest\.v2\+json/);
});

test('WWW-Authenticate: several challenges, quoted commas', () => {
  assert.equal(parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/ubuntu:pull,push' } },
  ]);
  assert.equal(parseWwwAuthenticate('Basic realm="r", Bearer realm="x",error="insufficient_scope"'), [
    { scheme: 'basic', params: { realm: 'r' } },
    { scheme: 'bearer', params: { realm: 'x', error: 'insufficient_scope' } },
  ]);
  assert.equal(parseWwwAuthenticate('Bearer realm=unquoted , service = "a\\"b"'), [{ scheme: 'bearer', params: { realm: 'unquoted', service: 'a"b' } }]);
  assert.equal(parseWwwAuthenticate('Negotiate'), [{ scheme: 'negotiate', params: {} }]);
});

test('credentials: order of files, key normalisation, credential helpers', async () => {
  const tmp = tempDir();
  try {
    const home = join(tmp.path, 'home');
    const bin = join(tmp.path, 'bin');
    mkdirSync(join(home, '.docker'), { recursive: true });
    mkdirSync(join(home, '.config', 'containers'), { recursive: true });
    mkdirSync(bin);
    // A fake helper: answers for two servers, "not found" otherwise, and logs what it was asked.
    writeFileSync(join(bin, 'docker-credential-test'), `#!/bin/sh
read server
echo "$1 $server" >> "${join(tmp.path, 'helper.log')}"
case "$server" in
  https://index.docker.io/v1/) echo '{"ServerURL":"'$server'","Username":"hubuser","Secret":"hub-s3cret"}' ;;
  helped.example.com) echo '{"ServerURL":"'$server'","Username":"<token>","Secret":"refresh-tok"}' ;;
  broken.example.com) echo "helper exploded" >&2; exit 3 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`);
    chmodSync(join(bin, 'docker-credential-test'), 0o755);
    const env = { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: home };
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('ignored:because-credsStore-is-not-first') },
        'reg.example.com:5000': { auth: b64('alice:pa:ss') },
        'https://legacy.example.com/v1/': { username: 'bob', password: 'pw' },
        'ns.example.com/team': { auth: b64('team:t') },
        'ns.example.com': { auth: b64('host:h') },
      },
      credHelpers: { 'helped.example.com': 'test', 'broken.example.com': 'test' },
      credsStore: 'test',
    }));
    const find = (r: string, extra: Record<string, string> = {}, opts: { creds?: string; authFile?: string } = {}) =>
      findCredentials(parseReference(r), { env: { ...env, ...extra }, home, ...opts });

    // Docker Hub: the auths entry under docker's key wins over credsStore.
    let c = await find('ubuntu');
    assert.is(c?.username, 'ignored');
    c = await find('reg.example.com:5000/x/y');
    assert.equal([c?.username, c?.password], ['alice', 'pa:ss']);
    c = await find('legacy.example.com/x');
    assert.equal([c?.username, c?.password], ['bob', 'pw']);
    // Namespace keys are more specific than the host key.
    assert.is((await find('ns.example.com/team/app'))?.username, 'team');
    assert.is((await find('ns.example.com/other/app'))?.username, 'host');
    // credHelpers, with docker's "<token>" user meaning an identity token.
    c = await find('helped.example.com/app');
    assert.equal([c?.username, c?.identityToken, c?.source], ['', 'refresh-tok', 'credential helper docker-credential-test']);
    // credsStore for everything else; "not found" is no credentials.
    assert.is(await find('unknown.example.com/app'), undefined);
    const err = await rejects(() => find('broken.example.com/app'), /docker-credential-test get for broken\.example\.com exited 3: helper exploded/);
    assert.not.match(err.message, /\n/);

    // --creds beats every file; containers' auth.json beats docker's config.
    assert.equal((await find('reg.example.com:5000/x', {}, { creds: 'me:my:pw' }))?.password, 'my:pw');
    writeFileSync(join(home, '.config', 'containers', 'auth.json'), JSON.stringify({ auths: { 'reg.example.com:5000': { auth: b64('podman:p') } } }));
    assert.is((await find('reg.example.com:5000/x'))?.username, 'podman');
    const runtime = join(tmp.path, 'run');
    mkdirSync(join(runtime, 'containers'), { recursive: true });
    writeFileSync(join(runtime, 'containers', 'auth.json'), JSON.stringify({ auths: { 'reg.example.com:5000': { auth: b64('runtime:r') } } }));
    assert.is((await find('reg.example.com:5000/x', { XDG_RUNTIME_DIR: runtime }))?.username, 'runtime');
    const custom = join(tmp.path, 'custom.json');
    writeFileSync(custom, JSON.stringify({ auths: { 'reg.example.com:5000': { auth: b64('custom:c') } } }));
    assert.is((await find('reg.example.com:5000/x', { XDG_RUNTIME_DIR: runtime, REGISTRY_AUTH_FILE: custom }))?.username, 'custom');
    assert.is((await find('reg.example.com:5000/x', { REGISTRY_AUTH_FILE: custom }, { authFile: join(runtime, 'containers', 'auth.json') }))?.username, 'runtime');
    // DOCKER_CONFIG moves docker's file.
    const dc = join(tmp.path, 'dc');
    mkdirSync(dc);
    writeFileSync(join(dc, 'config.json'), JSON.stringify({ auths: { 'other.example.com': { auth: b64('dc:d') } } }));
    assert.is((await find('other.example.com/x', { DOCKER_CONFIG: dc }))?.username, 'dc');
    assert.equal(authFilePaths({ env: { HOME: home, DOCKER_CONFIG: dc }, home }).map((p) => p.path.replace(tmp.path, '')).slice(1), [
      '/home/.config/containers/auth.json', '/dc/config.json', '/home/.dockercfg',
    ]);

    // A broken file is named, its content (maybe a secret) is not quoted.
    writeFileSync(custom, '{"auths": {"x": {"auth": "c2VjcmV0OnNlY3JldA=="}');
    const bad = await rejects(() => find('x.example.com/y', { REGISTRY_AUTH_FILE: custom }), /auth file .*custom\.json is not valid JSON/);
    assert.not.match(bad.message, /c2VjcmV0/);
    await rejects(() => find('x.example.com/y', {}, { creds: 'nocolon' }), /invalid --creds: expected USERNAME:PASSWORD/);
    assert.is(normalizeAuthKey('https://index.docker.io/v1/'), 'docker.io');
    assert.is(normalizeAuthKey('http://reg:5000/v2/'), 'reg:5000');
  } finally {
    tmp.remove();
  }
});

test('limitConcurrency runs at most N at once, in order', async () => {
  const limit = limitConcurrency(2);
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  const jobs = [0, 1, 2, 3, 4, 5].map((i) => limit(async () => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 5));
    order.push(i);
    running--;
    if (i === 3) throw new Error('job 3 failed');
    return i;
  }));
  const results = await Promise.allSettled(jobs);
  assert.is(peak, 2);
  assert.equal(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
  assert.throws(() => limitConcurrency(0), /positive integer/);
});

test.run();
