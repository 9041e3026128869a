// Pins that reproduce (issue 13 items 9-11), through the CLI bundle against the real registry:
// the --nix expression gives the store path we printed under nixpkgs' naming rules; platforms
// are explicit; a mismatch explains itself, also as JSON.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseHash } from '../lib/hash/index.js';
import { makeFixedOutputPath } from '../lib/store/index.js';
import { makeImage, makeIndex, pushImage, type ImageSpec } from '../store-fixtures/images/index.js';
import { havePeer } from './helpers/peers.js';
import { startRegistry } from './helpers/registry.js';
import { run, runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';
import { CLI_PATH } from './helpers/cli.js';

const peers = () => havePeer('docker-registry') && havePeer('nix-store');
const env = { PATH: process.env.PATH, HOME: process.env.HOME };
const fi = (store: string, args: string[]) => run('node', [CLI_PATH, '--store', store, ...args], { env });

const image = (content: string): ImageSpec => ({ layers: [{ entries: [{ type: 'file', path: 'etc/id', content }] }] });

/** The attributes of a printed `pullImage { a = "…"; b = false; }` (strings and booleans), and its comments. */
function parsePullImage(text: string): { attrs: Record<string, string | boolean>; comments: string[] } {
  const lines = text.trim().split('\n');
  assert.is(lines[0], 'pullImage {');
  assert.is(lines[lines.length - 1], '}');
  const attrs: Record<string, string | boolean> = {};
  const comments: string[] = [];
  for (const line of lines.slice(1, -1)) {
    const comment = /^\s+# (.*)$/.exec(line);
    if (comment) {
      comments.push(comment[1]!);
      continue;
    }
    const m = /^\s+([A-Za-z]+) = (".*"|true|false);$/.exec(line);
    assert.ok(m, `not an attribute line: ${line}`);
    attrs[m[1]!] = m[2] === 'true' ? true : m[2] === 'false' ? false : (JSON.parse(m[2]!) as string);
  }
  return { attrs, comments };
}

/** nixpkgs pullImage's store path for these attributes: `name`, or its default from finalImageName/finalImageTag, and the flat hash. */
function pullImagePath(attrs: Record<string, string | boolean>): string {
  const finalImageName = String(attrs.finalImageName ?? attrs.imageName);
  const finalImageTag = String(attrs.finalImageTag ?? 'latest');
  const name = typeof attrs.name === 'string' ? attrs.name : `docker-image-${finalImageName}-${finalImageTag}.tar`.replace(/[/:]/g, '-');
  return makeFixedOutputPath('flat', parseHash(String(attrs.hash ?? attrs.sha256)), name);
}

test('--nix: the printed pullImage attributes give the store path we printed (name, tlsVerify, platform)', async () => {
  if (!peers()) return;
  const t = tempDir();
  const reg = await startRegistry();
  try {
    const built = await makeImage(join(t.path, 'layout'), image('nix\n'), 'v1');
    const digest = await pushImage(built.dir, reg.port, 'library/demo', '1.0', { sourceTag: 'v1' });
    const ref = `${reg.host}/library/demo:1.0`;
    const store = join(t.path, 's');
    for (const extra of [[], ['--name', 'custom-image.tar', '--final-image-tag', 'stable'], ['--final-image-name', 'team/demo']]) {
      const nix = await fi(store, ['pull', '--nix', '--tls-verify=false', ...extra, ref]);
      assert.is(nix.code, 0, nix.stderr);
      const { attrs, comments } = parsePullImage(nix.stdout.toString());
      assert.is(attrs.imageDigest, digest);
      assert.is(attrs.tlsVerify, false, 'the registry is plain http: pullImage needs tlsVerify = false');
      assert.is(attrs.os, 'linux');
      assert.is(attrs.arch, 'amd64');
      assert.equal(comments, [], 'no variant here');
      assert.is('name' in attrs, extra.includes('--name'), 'name only when it is not the default');
      const json = await fi(store, ['pull', '--json', '--tls-verify=false', ...extra, ref]);
      assert.is(json.code, 0, json.stderr);
      const pin = JSON.parse(json.stdout.toString()) as { storePath: string; path: string };
      assert.is(pullImagePath(attrs), pin.storePath, `store path from the printed attributes (${extra.join(' ')})`);

      // Real Nix agrees: a flat fixed output of these bytes under the name pullImage would use.
      const name = pin.storePath.slice(pin.storePath.indexOf('-') + 1);
      const copy = join(t.path, name);
      writeFileSync(copy, readFileSync(pin.path));
      assert.is((await runOk('nix-store', ['--store', `local?root=${join(t.path, 'nix')}`, '--add-fixed', 'sha256', copy])).toString().trim(), pin.storePath);

      // And the attributes, given back as options, verify to that path.
      const back = [
        `${String(attrs.imageName)}@${String(attrs.imageDigest)}`, '--hash', String(attrs.hash), '--tls-verify=false',
        '--final-image-name', String(attrs.finalImageName), '--final-image-tag', String(attrs.finalImageTag),
        ...(typeof attrs.name === 'string' ? ['--name', attrs.name] : []),
      ];
      const verified = await fi(store, back);
      assert.is(verified.code, 0, verified.stderr);
      assert.is(verified.stdout.toString().trim(), pin.storePath);
    }
  } finally {
    await reg.stop();
    t.remove();
  }
});

test('--platform os/arch/variant: exact variants, conflicts are usage errors, the pin has variant; a single-platform image names its platform', async () => {
  if (!peers()) return;
  const t = tempDir();
  const reg = await startRegistry();
  try {
    const built = await makeIndex(join(t.path, 'layout'), {
      images: [
        { platform: { os: 'linux', architecture: 'amd64' }, layers: image('amd64\n').layers },
        { platform: { os: 'linux', architecture: 'arm', variant: 'v6' }, layers: image('armv6\n').layers },
        { platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, layers: image('armv7\n').layers },
      ],
    }, 'multi');
    await pushImage(built.dir, reg.port, 'library/multi', 'multi', { sourceTag: 'multi' });
    const ref = `${reg.host}/library/multi:multi`;
    const store = join(t.path, 's');

    const viaPlatform = await fi(store, ['--json', 'pull', '--tls-verify=false', '--platform', 'linux/arm/v7', ref]);
    assert.is(viaPlatform.code, 0, viaPlatform.stderr);
    const pin = JSON.parse(viaPlatform.stdout.toString()) as { imageDigest: string; arch: string; variant?: string; os: string };
    assert.is(pin.imageDigest, built.images[2]!.digest);
    assert.equal([pin.os, pin.arch, pin.variant], ['linux', 'arm', 'v7']);
    const viaFlags = await fi(store, ['--json', 'pull', '--tls-verify=false', '--os', 'linux', '--arch', 'arm', '--variant', 'v7', ref]);
    assert.is((JSON.parse(viaFlags.stdout.toString()) as { imageDigest: string }).imageDigest, pin.imageDigest, '--os/--arch/--variant is the same choice');
    const agreeing = await fi(store, ['--json', 'pull', '--tls-verify=false', '--platform', 'linux/arm/v6', '--arch', 'arm', ref]);
    assert.is((JSON.parse(agreeing.stdout.toString()) as { imageDigest: string }).imageDigest, built.images[1]!.digest);

    // v8 is not there; v7 would be a compatible stand-in, but a variant given is matched exactly.
    const v8 = await fi(store, ['pull', '--tls-verify=false', '--platform', 'linux/arm/v8', ref]);
    assert.is(v8.code, 1, v8.stderr);
    assert.match(v8.stderr, /no image for platform linux\/arm\/v8 .*available: linux\/amd64, linux\/arm\/v6, linux\/arm\/v7 \(a variant given is matched exactly\)/);
    assert.is(v8.stderr.trim().split('\n').length, 1);

    const conflict = await fi(store, ['pull', '--tls-verify=false', '--platform', 'linux/arm64', '--arch', 'amd64', ref]);
    assert.is(conflict.code, 2, conflict.stderr);
    assert.match(conflict.stderr, /^error: --platform linux\/arm64 conflicts with --arch amd64/);
    const bad = await fi(store, ['pull', '--tls-verify=false', '--platform', 'linux', ref]);
    assert.is(bad.code, 2);
    assert.match(bad.stderr, /invalid platform 'linux': expected os\/arch or os\/arch\/variant/);

    // --nix: pullImage has no variant argument; the expression says so, and imageDigest carries the choice.
    const nix = await fi(store, ['pull', '--nix', '--tls-verify=false', '--platform', 'linux/arm/v6', ref]);
    assert.is(nix.code, 0, nix.stderr);
    const { attrs, comments } = parsePullImage(nix.stdout.toString());
    assert.equal([attrs.arch, attrs.imageDigest], ['arm', built.images[1]!.digest]);
    assert.equal(comments, ["variant v6: pullImage takes no variant argument; imageDigest already names this variant's manifest"]);

    // A single-platform (amd64) image asked for by another architecture: refused, its platform named.
    const single = await makeImage(join(t.path, 'single'), image('single\n'), 'v1');
    await pushImage(single.dir, reg.port, 'library/single', '1', { sourceTag: 'v1' });
    const wrongArch = await fi(store, ['pull', '--tls-verify=false', '--arch', 'arm64', `${reg.host}/library/single:1`]);
    assert.is(wrongArch.code, 1, wrongArch.stderr);
    assert.match(wrongArch.stderr, /library\/single:1 is a single-platform image for linux\/amd64, not linux\/arm64; pull it without a platform to take it as it is/);
    const asItIs = await fi(store, ['--json', 'pull', '--tls-verify=false', `${reg.host}/library/single:1`]);
    assert.is(asItIs.code, 0, asItIs.stderr);
    assert.not.ok('variant' in (JSON.parse(asItIs.stdout.toString()) as object), 'no variant key when the image has none');
  } finally {
    await reg.stop();
    t.remove();
  }
});

test('a hash mismatch explains itself: digest pulled, defaulted name and tag, where the tag points now; --json has the error object', async () => {
  if (!peers()) return;
  const t = tempDir();
  const reg = await startRegistry();
  try {
    const first = await makeImage(join(t.path, 'one'), image('one\n'), 'v1');
    const second = await makeImage(join(t.path, 'two'), image('two\n'), 'v1');
    const d1 = await pushImage(first.dir, reg.port, 'library/app', '1.0', { sourceTag: 'v1' });
    const store = join(t.path, 's');
    const wrong = 'sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
    const byTag = await fi(store, [`${reg.host}/library/app:1.0`, '--tls-verify=false', '--hash', wrong]);
    assert.is(byTag.code, 102, byTag.stderr);
    const lines = byTag.stderr.trimEnd().split('\n');
    assert.match(lines[0]!, /^error: hash mismatch in fixed-output derivation '\/nix\/store\/[0-9a-z]{32}-docker-image-.*\.recipe\.json':$/);
    assert.is(lines[1], `  specified: ${wrong}`);
    assert.match(byTag.stderr, new RegExp(`\\npulled ${reg.host}/library/app:1\\.0 = ${d1} \\(linux/amd64\\)\\n`));
    assert.match(byTag.stderr, /archive written as .*library\/app:1\.0 \(finalImageName defaulted to the image name '.*library\/app'; finalImageTag defaulted to the tag pulled '1\.0'\)/);
    assert.match(byTag.stderr, new RegExp(`tag '1\\.0' resolves now to ${d1}; if the pin is older, the tag has moved: pin by digest`));

    // The tag moves on; a pull by tag@digest says where it points now.
    const d2 = await pushImage(second.dir, reg.port, 'library/app', '1.0', { sourceTag: 'v1' });
    const pinned = await fi(store, ['--json', `${reg.host}/library/app:1.0@${d1}`, '--tls-verify=false', '--hash', wrong, '--final-image-name', 'app']);
    assert.is(pinned.code, 102, pinned.stderr);
    assert.match(pinned.stderr, new RegExp(`tag '1\\.0' resolves now to ${d2}, not the ${d1} pulled`));
    assert.match(pinned.stderr, /archive written as app:1\.0 \(finalImageTag defaulted to the tag pulled '1\.0'\)/);
    const err = JSON.parse(pinned.stdout.toString()) as { error: Record<string, unknown> };
    assert.is(err.error.code, 'hash-mismatch');
    assert.is(err.error.exitCode, 102);
    assert.is(err.error.imageDigest, d1);
    assert.is(err.error.tagDigestNow, d2);
    assert.is(err.error.finalImageNameDefaulted, false);
    assert.is(err.error.finalImageTagDefaulted, true);
    assert.match(String(err.error.message), /^hash mismatch in fixed-output derivation/);

    // By digest alone the tag is pullImage's default.
    const byDigest = await fi(store, [`${reg.host}/library/app@${d1}`, '--tls-verify=false', '--hash', wrong]);
    assert.is(byDigest.code, 102);
    assert.match(byDigest.stderr, /finalImageTag defaulted to 'latest'/);
    assert.not.match(byDigest.stderr, /resolves now/);
  } finally {
    await reg.stop();
    t.remove();
  }
});

test('--json: every failure is also {"error": {code, message, exitCode}} on stdout', async () => {
  const t = tempDir();
  try {
    const store = join(t.path, 's');
    const usage = await fi(store, ['--json', 'url', 'example.org/f.tar']);
    assert.is(usage.code, 2, usage.stderr);
    assert.equal(JSON.parse(usage.stdout.toString()), { error: { code: 'usage', message: "'example.org/f.tar' is not a URL (no scheme): write https://example.org/f.tar (http, https or file)", exitCode: 2 } });
    const missing = await fi(store, ['--json', 'hash', 'path', join(t.path, 'nowhere')]);
    assert.is(missing.code, 1);
    const e = JSON.parse(missing.stdout.toString()) as { error: { code: string; message: string; errno: string } };
    assert.equal([e.error.code, e.error.errno], ['failure', 'ENOENT']);
    assert.match(e.error.message, new RegExp(`${join(t.path, 'nowhere')}: no such file or directory$`));
    assert.match(missing.stderr, /^error: .*nowhere: no such file or directory\n$/);
    const plain = await fi(store, ['url', 'example.org/f.tar']);
    assert.is(plain.stdout.toString(), '', 'without --json nothing goes to stdout');
  } finally {
    t.remove();
  }
});

test.run();
