// `fetch-image lock` and `fetch-image audit` end to end: the real registry (a tag moved, a blob
// tampered with in its storage), a URL server that starts serving other bytes, a flipped byte
// in the store, nixpkgs pins read without Nix; exit codes as documented.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseHash } from '../lib/hash/index.js';
import { makeImage, pushImage, type ImageSpec } from '../store-fixtures/images/index.js';
import { CLI_PATH } from './helpers/cli.js';
import { startServer, type TestServer } from './helpers/http-servers.js';
import { havePeer } from './helpers/peers.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { run } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';

const env = { PATH: process.env.PATH, HOME: process.env.HOME };
const image = (text: string): ImageSpec => ({
  layers: [{ entries: [{ type: 'dir', path: 'etc' }, { type: 'file', path: 'etc/release', content: text }, { type: 'random', path: 'blob.bin', size: 50_000, seed: 3 }] }],
  runConfig: { Cmd: ['/bin/sh'] },
});

interface Result { entry: string; check: string; verdict: string; detail: string; pinned?: string; found?: string; report?: { identical: boolean }; kept?: { first?: string; second: string } }

let t: { path: string; remove: () => void };
let reg: Registry;
let regData: string;
let files: TestServer;
let served = Buffer.from('release 1.0 tarball bytes\n');
const have = () => havePeer('docker-registry');

test.before(async () => {
  if (!have()) return;
  t = tempDir();
  regData = join(t.path, 'registry-data');
  reg = await startRegistry({ dataDir: regData });
  files = await startServer((req, res) => {
    res.setHeader('etag', `"${served.length}-${served[8]}"`);
    res.setHeader('content-length', String(served.length));
    res.end(req.method === 'HEAD' ? undefined : served);
  });
});

test.after(async () => {
  if (!have()) return;
  await files.close();
  await reg.stop();
  t.remove();
});

const fi = (args: string[]) => run('node', [CLI_PATH, '--store', join(t.path, 'store'), ...args], { env, cwd: t.path });
const audit = async (args: string[]) => {
  const r = await fi(['audit', '--tls-verify=false', '--json', ...args]);
  const out = r.stdout.toString();
  return { code: r.code, stderr: r.stderr, results: (out ? (JSON.parse(out) as { results: Result[] }).results : []) };
};

test('lock, then audit: everything reproduces (exit 0); re-locking gives no diff', async () => {
  if (!have()) return;
  const built = await makeImage(join(t.path, 'v1'), image('1.0\n'), 'v1');
  await pushImage(built.dir, reg.port, 'library/app', '1.0', { sourceTag: 'v1' });
  const lockArgs = ['lock', '--tls-verify=false', `${reg.host}/library/app:1.0`, files.url('/src-1.0.tar.gz'), '--lock', 'app.lock.json'];
  const locked = await fi(lockArgs);
  assert.is(locked.code, 0, locked.stderr);
  const lockText = readFileSync(join(t.path, 'app.lock.json'), 'utf8');
  const lock = JSON.parse(lockText) as { images: { fromTag: string; imageDigest: string; tlsVerify: boolean }[]; urls: { etag: string; size: number }[] };
  assert.is(lock.images[0]!.fromTag, '1.0');
  assert.is(lock.images[0]!.tlsVerify, false);
  assert.is(lock.urls[0]!.size, served.length);
  const again = await fi(lockArgs);
  assert.match(again.stdout.toString(), /^unchanged: /);
  assert.is(readFileSync(join(t.path, 'app.lock.json'), 'utf8'), lockText, 'stable');
  const r = await audit(['app.lock.json']);
  assert.is(r.code, 0, r.stderr + JSON.stringify(r.results, null, 1));
  const verdicts = r.results.map((x) => `${x.check}:${x.verdict}`);
  assert.equal(verdicts, ['drift:ok', 'refetch:ok', 'rebuild:n/a', 'store:ok', 'drift:ok', 'refetch:ok', 'rebuild:n/a', 'store:ok']);
  const table = await fi(['audit', '--tls-verify=false', 'app.lock.json']);
  assert.match(table.stdout.toString(), /^ENTRY +CHECK +VERDICT +DETAIL/);
  assert.match(table.stdout.toString(), /8 checks of 2 entries: everything reproduced/);
});

test('a tag moved in the registry: drift, both digests named (exit 1); checks are selectable, never empty', async () => {
  if (!have()) return;
  const before = JSON.parse(readFileSync(join(t.path, 'app.lock.json'), 'utf8')) as { images: { imageDigest: string }[] };
  const moved = await makeImage(join(t.path, 'v2'), image('2.0\n'), 'v2');
  await pushImage(moved.dir, reg.port, 'library/app', '1.0', { sourceTag: 'v2' });
  const r = await audit(['--checks', 'drift', 'app.lock.json']);
  assert.is(r.code, 1);
  const drift = r.results.find((x) => x.verdict === 'drifted')!;
  assert.is(drift.pinned, before.images[0]!.imageDigest);
  assert.match(drift.detail, new RegExp(`tag '1.0' now resolves to ${drift.found}, pinned ${drift.pinned}`));
  assert.ok(r.results.every((x) => x.check === 'drift'));
  for (const bad of ['--checks=', '--checks=drfit', '--checks= , ']) {
    const u = await fi(['audit', bad, 'app.lock.json']);
    assert.is(u.code, 2, bad);
    assert.match(u.stderr, /^error: (empty value given to --checks|empty --checks|unknown check 'drfit')/);
  }
});

test('a URL now serving other bytes, and a tampered blob in the registry storage: refetch reports both (exit 1)', async () => {
  if (!have()) return;
  served = Buffer.from('release 1.0 tarball bytes, regenerated\n');
  const r = await audit(['--checks', 'drift,refetch', 'app.lock.json']);
  const url = r.results.filter((x) => x.entry.endsWith('/src-1.0.tar.gz'));
  assert.equal(url.map((x) => x.verdict), ['drifted', 'mismatch']);
  const mismatch = url[1]!;
  assert.match(mismatch.detail, /now gives sha256-.*, pinned sha256-/);
  assert.ok(mismatch.report && !mismatch.report.identical, 'a file-level report of the stored copy against the new bytes');
  // Tamper with the layer blob of the pinned image in the registry's own storage.
  const lock = JSON.parse(readFileSync(join(t.path, 'app.lock.json'), 'utf8')) as { images: { imageDigest: string }[] };
  const manifestPath = join(regData, 'docker/registry/v2/blobs/sha256', lock.images[0]!.imageDigest.slice(7, 9), lock.images[0]!.imageDigest.slice(7), 'data');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { layers: { digest: string }[] };
  const blob = join(regData, 'docker/registry/v2/blobs/sha256', manifest.layers[0]!.digest.slice(7, 9), manifest.layers[0]!.digest.slice(7), 'data');
  const bytes = readFileSync(blob);
  bytes[bytes.length - 20] ^= 0xff;
  writeFileSync(blob, bytes);
  const tampered = await audit(['--checks', 'refetch', 'app.lock.json']);
  assert.is(tampered.code, 1);
  const img = tampered.results.find((x) => x.entry.startsWith('library/app') || x.entry.includes('/library/app'))!;
  assert.is(img.verdict, 'error');
  assert.match(img.detail, new RegExp(manifest.layers[0]!.digest.slice(0, 19)));
});

test('a flipped byte in the stored archive: store damage (exit 3); with drift too: 109', async () => {
  if (!have()) return;
  const lock = JSON.parse(readFileSync(join(t.path, 'app.lock.json'), 'utf8')) as { images: { storePath: string }[] };
  const real = join(t.path, 'store', lock.images[0]!.storePath);
  chmodSync(real, 0o644);
  const bytes = readFileSync(real);
  bytes[1000] ^= 1;
  writeFileSync(real, bytes);
  const r = await audit(['--checks', 'store', 'app.lock.json']);
  assert.is(r.code, 3);
  assert.match(r.results.find((x) => x.verdict === 'damaged')!.detail, /NAR hash is sha256-.*, recorded sha256-/);
  const both = await audit(['--checks', 'drift,store', 'app.lock.json']);
  assert.is(both.code, 109);
  const md = await fi(['audit', '--tls-verify=false', '--markdown', '--checks', 'store', 'app.lock.json']);
  assert.match(md.stdout.toString(), /^## fetch-image audit\n\n\*\*2 checks of 2 entries: 1 damaged\*\*\n\n\| entry \| check \| verdict \| detail \|/);
});

test('nixpkgs pullImage pins audited without Nix; a computed attribute is reported by file and line', async () => {
  if (!have()) return;
  // A pin of the moved tag, as nix-prefetch-docker would print it.
  const pinned = await fi(['--json', '--tls-verify=false', `${reg.host}/library/app:1.0`]);
  assert.is(pinned.code, 0, pinned.stderr);
  const pin = JSON.parse(pinned.stdout.toString()) as { imageName: string; imageDigest: string; hash: string; sha256: string; finalImageName: string; finalImageTag: string };
  const nix32 = parseHash(pin.hash).nix32;
  writeFileSync(join(t.path, 'images.nix'), [
    '{ dockerTools, version }:',
    '{',
    '  # made with nix-prefetch-docker',
    `  app = dockerTools.pullImage { imageName = "${pin.imageName}"; imageDigest = "${pin.imageDigest}"; sha256 = "${nix32}"; finalImageTag = "1.0"; tlsVerify = false; };`,
    `  app2 = dockerTools.pullImage { imageName = "${pin.imageName}"; imageDigest = "${pin.imageDigest}";`,
    `    hash = "${pin.hash}"; finalImageName = "${pin.finalImageName}"; finalImageTag = "1.0"; };`,
    `  computed = dockerTools.pullImage { imageName = "${pin.imageName}"; imageDigest = "${pin.imageDigest}"; hash = "${pin.hash}";`,
    '    finalImageTag = version; };',
    '}',
  ].join('\n'));
  const r = await audit(['--checks', 'drift,refetch', '--nix', 'images.nix']);
  assert.is(r.code, 1, 'an unauditable pin fails the audit');
  const unsupported = r.results.filter((x) => x.verdict === 'unsupported');
  assert.is(unsupported.length, 1);
  assert.match(unsupported[0]!.detail, /^finalImageTag \(line 8\): computed value/);
  const ok = r.results.filter((x) => x.verdict === 'ok').map((x) => x.check);
  assert.equal(ok, ['drift', 'refetch', 'drift', 'refetch'], JSON.stringify(r.results, null, 1));
});

test.run();
