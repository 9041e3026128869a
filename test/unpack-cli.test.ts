// `fetch-image url --unpack` against real `nix-prefetch-url --unpack` (issue 13 item 19), through
// the CLI bundle: file:// URLs (mounted media, no network), symlink targets kept as Nix keeps
// them, --no-strip-root, and errors that name the URL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { havePeer } from './helpers/peers.js';
import { run, runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';
import { CLI_PATH } from './helpers/cli.js';

const env = { PATH: process.env.PATH, HOME: process.env.HOME };
const fi = (store: string, args: string[]) => run('node', [CLI_PATH, '--store', store, ...args], { env });

/** Real Nix's answer for a URL: [nix32 hash, store path], in a store of its own (works offline, as root). */
async function nixPrefetch(nixRoot: string, args: string[]): Promise<[string, string]> {
  const r = await run('nix-prefetch-url', ['--store', `local?root=${nixRoot}`, ...args], { env });
  assert.is(r.code, 0, r.stderr);
  const path = /path is '([^']+)'/.exec(r.stderr)?.[1];
  assert.ok(path, r.stderr);
  return [r.stdout.toString().trim(), path];
}

test('file:// and --unpack: same hash and store path as nix-prefetch-url, absolute and climbing symlinks kept; pinned, no network needed', async () => {
  if (!havePeer('nix-prefetch-url') || !havePeer('tar')) return;
  const t = tempDir();
  try {
    const src = join(t.path, 'src', 'pkg-1.0');
    mkdirSync(join(src, 'bin'), { recursive: true });
    writeFileSync(join(src, 'README'), 'readme\n');
    writeFileSync(join(src, 'bin', 'run'), '#!/bin/sh\necho run\n', { mode: 0o755 });
    symlinkSync('/bin/busybox', join(src, 'bin', 'sh'));
    symlinkSync('../../etc', join(src, 'etc'));
    const archive = join(t.path, 'media', 'pkg-1.0.tar.gz');
    mkdirSync(join(t.path, 'media'));
    await runOk('tar', ['-C', join(t.path, 'src'), '-czf', archive, 'pkg-1.0']);
    const url = pathToFileURL(archive).href;
    const store = join(t.path, 's');
    const nixRoot = join(t.path, 'nix');

    const [nixUnpacked, nixUnpackedPath] = await nixPrefetch(nixRoot, ['--unpack', url]);
    const ours = await fi(store, ['--json', 'url', '--unpack', '--name', 'pkg-1.0.tar.gz', url]);
    assert.is(ours.code, 0, ours.stderr);
    const pin = JSON.parse(ours.stdout.toString()) as { sha256: string; storePath: string; path: string };
    assert.is(pin.sha256, nixUnpacked, 'NAR hash of the unpacked tree equals nix-prefetch-url --unpack');
    assert.is(pin.storePath, nixUnpackedPath);
    assert.equal(readdirSync(pin.path).sort(), ['README', 'bin', 'etc']);

    const [nixFlat, nixFlatPath] = await nixPrefetch(nixRoot, [url]);
    const flat = await fi(store, ['--json', 'url', url]);
    assert.is(flat.code, 0, flat.stderr);
    const flatPin = JSON.parse(flat.stdout.toString()) as { sha256: string; storePath: string };
    assert.equal([flatPin.sha256, flatPin.storePath], [nixFlat, nixFlatPath], 'plain file:// too');

    // With the pin, into a fresh store: the medium is read, nothing else; then the store answers alone.
    const fresh = join(t.path, 'fresh');
    const pinned = await fi(fresh, ['url', '--unpack', url, '--sha256', nixUnpacked]);
    assert.is(pinned.code, 0, pinned.stderr);
    rmSync(archive);
    const again = await fi(fresh, ['url', '--unpack', url, '--sha256', nixUnpacked]);
    assert.is(again.code, 0, again.stderr);
    assert.is(again.stdout.toString(), pinned.stdout.toString());
    const gone = await fi(join(t.path, 'other'), ['url', url]);
    assert.is(gone.code, 1);
    assert.match(gone.stderr, new RegExp(`^error: ${url.replace(/[.]/g, '\\.')}: no such file\\n$`));
  } finally {
    t.remove();
  }
});

test('--no-strip-root keeps every top-level entry (= nix-hash of what tar extracts); the hint names it; refusals name the URL', async () => {
  if (!havePeer('nix-hash') || !havePeer('tar')) return;
  const t = tempDir();
  try {
    const src = join(t.path, 'src');
    mkdirSync(join(src, 'a'), { recursive: true });
    writeFileSync(join(src, 'a', 'x'), 'x\n');
    writeFileSync(join(src, 'b'), 'b\n');
    symlinkSync('/etc/passwd', join(src, 'abs'));
    const archive = join(t.path, 'flat.tar');
    await runOk('tar', ['-C', src, '-cf', archive, 'a', 'b', 'abs']);
    const url = pathToFileURL(archive).href;
    const store = join(t.path, 's');

    const stripped = await fi(store, ['url', '--unpack', url]);
    assert.is(stripped.code, 1);
    assert.match(stripped.stderr, new RegExp(`^error: cannot unpack ${url.replace(/[.]/g, '\\.')}: the archive must contain a single top-level file or directory to strip, but it has 3 .*keep the whole tree with --no-strip-root`));

    const whole = await fi(store, ['url', '--unpack', '--no-strip-root', '--base32', url]);
    assert.is(whole.code, 0, whole.stderr);
    const extracted = join(t.path, 'extracted');
    mkdirSync(extracted);
    await runOk('tar', ['-C', extracted, '-xf', archive]);
    assert.is(whole.stdout.toString().trim(), (await runOk('nix-hash', ['--type', 'sha256', '--base32', extracted])).toString().trim());

    const notUnpack = await fi(store, ['url', '--no-strip-root', url]);
    assert.is(notUnpack.code, 2);
    assert.match(notUnpack.stderr, /--no-strip-root applies only with --unpack/);

    // A link is only a target, but nothing may be written through one.
    const evil = join(t.path, 'evil');
    mkdirSync(join(evil, 'pkg'), { recursive: true });
    symlinkSync('/tmp', join(evil, 'pkg', 'tmp'));
    const evilTar = join(t.path, 'evil.tar');
    await runOk('tar', ['-C', evil, '-cf', evilTar, 'pkg']);
    await runOk('sh', ['-c', `mkdir -p ${join(t.path, 'x', 'pkg', 'tmp')} && echo pwned > ${join(t.path, 'x', 'pkg', 'tmp', 'fi-escape')} && tar -C ${join(t.path, 'x')} -rf ${evilTar} pkg/tmp/fi-escape`]);
    const refused = await fi(store, ['url', '--unpack', pathToFileURL(evilTar).href]);
    assert.is(refused.code, 1);
    assert.match(refused.stderr, /^error: cannot unpack file:\/\/.*evil\.tar: refusing archive entry 'pkg\/tmp\/fi-escape': it would be written through the symlink 'pkg\/tmp'\n$/);
    assert.not.ok(readdirSync('/tmp').includes('fi-escape'));
  } finally {
    t.remove();
  }
});

test.run();
