// `fetch-image REF --registry-version v1` end to end through the CLI: the pull.nix directory as a
// recursive fixed output whose hash and store path real Nix agrees with.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalStore } from '../lib/store/index.js';
import { buildV1Image, noise, startV1Registry } from '../store-fixtures/v1-registry/index.js';
import { havePeer } from './helpers/peers.js';
import { run, runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';
import { CLI_PATH } from './helpers/cli.js';

const CLI = CLI_PATH;
const fi = (store: string, args: string[]) => run('node', [CLI, '--store', store, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME } });

const IMAGE = buildV1Image({
  name: 'team/legacy',
  tags: ['2016', 'latest'],
  layers: [
    { files: { 'bin/app': noise(100_000, 'app'), 'etc/issue': 'Legacy\n' } },
    { files: { 'etc/motd': 'héllo\n' }, gzip: true, json: { Size: 0, comment: 'ünïcödé' } },
  ],
});

interface V1Pin { imageName: string; imageTag: string; imageId: string; hash: string; sha256: string; storePath: string; path: string; tarball?: string; tarballPath?: string }

test('v1 prefetch in the unstable mode: pin, Nix agrees on hash and store path; offline by pin; --tarball loads', async () => {
  const t = tempDir();
  const reg = await startV1Registry({ images: [IMAGE], unstable: true });
  try {
    const store = join(t.path, 's');
    const args = ['team/legacy:2016', '--registry-version', 'v1', '--index-url', reg.indexUrl];
    const r = await fi(store, ['--json', ...args, '--tarball']);
    assert.is(r.code, 0, r.stderr);
    const pin = JSON.parse(r.stdout.toString()) as V1Pin;
    assert.is(pin.imageName, 'team/legacy');
    assert.is(pin.imageTag, '2016');
    assert.is(pin.imageId, IMAGE.id);
    assert.match(pin.storePath, /^\/nix\/store\/[0-9a-z]{32}-team-legacy-2016$/);
    assert.equal(readdirSync(pin.path).sort(), [...IMAGE.layers.keys(), 'repositories'].sort());

    // A second pull with the metadata served in other byte forms gives the same pin.
    const again = await fi(join(t.path, 's2'), ['--json', ...args]);
    assert.is((JSON.parse(again.stdout.toString()) as V1Pin).sha256, pin.sha256);

    if (havePeer('nix-hash')) {
      assert.is(pin.sha256, (await runOk('nix-hash', ['--type', 'sha256', '--base32', pin.path])).toString().trim());
      const copy = join(t.path, 'team-legacy-2016');
      await runOk('cp', ['-r', pin.path, copy]);
      const nixPath = (await runOk('nix-store', ['--store', `local?root=${join(t.path, 'nix')}`, '--add-fixed', '--recursive', 'sha256', copy])).toString().trim();
      assert.is(pin.storePath, nixPath);
    }

    if (havePeer('podman')) {
      // Debian bookworm's podman 4.3 cannot read any gzip-compressed docker archive (not even
      // `gzip -n` of skopeo's); it loads the same bytes once gunzipped.
      const plain = join(t.path, 'legacy.tar');
      await runOk('sh', ['-c', `gzip -dc '${pin.tarballPath}' > '${plain}'`]);
      const podman = ['--storage-driver', 'vfs', '--root', join(t.path, 'proot'), '--runroot', join(t.path, 'prun'), '--events-backend', 'none', '--cgroup-manager', 'cgroupfs'];
      await runOk('podman', [...podman, 'load', '-q', '-i', plain]);
      assert.match((await runOk('podman', [...podman, 'images', '--format', '{{.Repository}}:{{.Tag}}'])).toString(), 'team/legacy:2016');
    }

    await reg.close();
    const offline = await fi(store, [...args, '--sha256', pin.hash]);
    assert.is(offline.code, 0, offline.stderr);
    assert.is(offline.stdout.toString().trim(), pin.storePath);
  } finally {
    await reg.close().catch(() => undefined);
    t.remove();
  }
});

test('v1 failures: unknown tag, missing token, broken ancestry — one line, store unchanged', async () => {
  const t = tempDir();
  const broken = buildV1Image({ name: 'team/broken', tags: ['x'], layers: [{ files: { a: '1' } }, { files: { b: '2' } }], ancestryText: '{"not":"a list"}' });
  const reg = await startV1Registry({ images: [IMAGE, broken], requireToken: true });
  const noToken = await startV1Registry({ images: [IMAGE], issueToken: false, requireToken: true });
  try {
    const store = join(t.path, 's');
    const cases: [string[], RegExp][] = [
      [['team/legacy:nope', '--index-url', reg.indexUrl], /tag 'nope'|nope.*not found|not found/i],
      [['team/legacy:2016', '--index-url', noToken.indexUrl], /401|token|refused/i],
      [['team/broken:x', '--index-url', reg.indexUrl], /ancestry/i],
    ];
    for (const [args, message] of cases) {
      const r = await fi(store, [...args, '--registry-version', 'v1']);
      assert.is(r.code, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      const s = new LocalStore({ root: store });
      assert.equal(s.list().filter((i) => !i.path.endsWith('.recipe.json')), []);
      assert.equal(readdirSync(join(store, 'nix/var/fetch-image/tmp')), []);
    }
  } finally {
    await reg.close();
    await noToken.close();
    t.remove();
  }
});

test('v1: the index\'s Basic credentials from a netrc file, sent to the index only, stored nowhere', async () => {
  const t = tempDir();
  const secret = 'v1-netrc-secret-81';
  const reg = await startV1Registry({ images: [IMAGE], credentials: { username: 'ana', password: secret } });
  try {
    const store = join(t.path, 's');
    const args = ['team/legacy:2016', '--registry-version', 'v1', '--index-url', reg.indexUrl];
    const refused = await fi(store, args);
    assert.is(refused.code, 1, 'the index wants credentials');
    writeFileSync(join(t.path, 'netrc'), `machine 127.0.0.1 login ana password ${secret}\n`);
    const r = await fi(store, [...args, '--netrc-file', join(t.path, 'netrc')]);
    assert.is(r.code, 0, r.stderr);
    const basic = reg.log.filter((l) => (l.headers.authorization ?? '').startsWith('Basic '));
    assert.ok(basic.length > 0 && basic.every((l) => l.role === 'index'), 'Basic went to the index only');
    const recipes = new LocalStore({ root: store }).list().filter((i) => i.path.endsWith('.recipe.json'));
    assert.is(recipes.length, 1);
    assert.not.match(r.stdout.toString() + r.stderr, secret);
  } finally {
    await reg.close();
    t.remove();
  }
});

test.run();
