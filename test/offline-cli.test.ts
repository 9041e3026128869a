// The air-gap story end to end through the CLI: pull on one machine (store A), serve its store
// signed, then on another (store B) with the registry gone, `fetch-image REF --sha256 H
// --substituter URL` gets the pinned path from the cache — and refuses an unsigned cache.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LocalStore } from '../lib/store/index.js';
import { startBadRegistry } from '../store-fixtures/bad-registry/index.js';
import { makeImage } from '../store-fixtures/images/index.js';
import { run } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';
import { CLI_PATH } from './helpers/cli.js';

const CLI = CLI_PATH;
// No retries: the registry is down on purpose, and a refused connection need not be retried here.
const env = { PATH: process.env.PATH, HOME: '/nonexistent', XDG_CONFIG_HOME: '/nonexistent', NIX_CURL_FLAGS: '--retry 0' };
const fi = (store: string, args: string[]) => run('node', [CLI, '--store', store, ...args], { env });

async function serve(store: string, args: string[]): Promise<{ url: string; stop: () => void }> {
  const child = spawn('node', [CLI, '--store', store, 'mirror', 'serve', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /https?:\/\/127\.0\.0\.1:\d+/.exec(out);
      if (m) resolve(m[0]);
    });
    child.once('exit', (code) => reject(new Error(`mirror serve exited ${code}: ${out}`)));
  });
  return { url, stop: () => child.kill() };
}

test('pin pulled on A, served signed, fetched on B with the registry stopped; unsigned refused', async () => {
  const t = tempDir();
  const reg = await startBadRegistry();
  let server: { url: string; stop: () => void } | undefined;
  try {
    const layout = await makeImage(join(t.path, 'layout'), { layers: [{ entries: [{ type: 'file', path: 'etc/motd', content: 'air-gapped\n' }] }] }, 'v1');
    const blobs = join(layout.dir, 'blobs', 'sha256');
    for (const hex of readdirSync(blobs)) reg.addBlob(readFileSync(join(blobs, hex)));
    reg.addManifest('team/app', layout.images[0]!.manifest, layout.images[0]!.mediaType, ['v1']);
    const ref = `${reg.host}/team/app:v1`;
    const a = join(t.path, 'a');
    const b = join(t.path, 'b');

    const pre = await fi(a, ['--json', ref, '--tls-verify=false']);
    assert.is(pre.code, 0, pre.stderr);
    const pin = JSON.parse(pre.stdout.toString()) as { sha256: string; storePath: string; path: string };
    await reg.stop();

    const key = join(t.path, 'key');
    const kg = await fi(a, ['mirror', 'keygen', 'cache.test-1', '--out', key]);
    assert.is(kg.code, 0, kg.stderr);
    const pub = readFileSync(`${key}.public`, 'utf8').trim();

    // Unsigned server: B refuses it and, with nothing else to go on, fails without registering anything.
    server = await serve(a, []);
    const unsigned = await fi(b, [ref, '--tls-verify=false', '--sha256', pin.sha256, '--substituter', server.url, '--trusted-key', pub]);
    assert.is.not(unsigned.code, 0);
    assert.equal(new LocalStore({ root: b }).list(), []);
    server.stop();

    server = await serve(a, ['--sign-key', `${key}.secret`]);
    const got = await fi(b, [ref, '--tls-verify=false', '--sha256', pin.sha256, '--substituter', server.url, '--trusted-key', pub]);
    assert.is(got.code, 0, got.stderr);
    assert.is(got.stdout.toString().trim(), pin.storePath);
    const storeB = new LocalStore({ root: b });
    assert.ok(readFileSync(storeB.realPath(pin.storePath)).equals(readFileSync(pin.path)), 'same bytes on B');
    assert.equal((await storeB.verify({ checkContents: true })).problems, []);

    // Carried on a disk instead: export by image reference (resolved through A's recipes), import on C.
    const disk = join(t.path, 'usb-cache');
    const exp = await fi(a, ['mirror', 'export', '--to', disk, '--sign-key', `${key}.secret`, ref]);
    assert.is(exp.code, 0, exp.stderr);
    const c = join(t.path, 'c');
    const imp = await fi(c, ['mirror', 'import', '--from', disk, '--all', '--trusted-key', pub]);
    assert.is(imp.code, 0, imp.stderr);
    const offline = await fi(c, [ref, '--tls-verify=false', '--sha256', pin.sha256]);
    assert.is(offline.stdout.toString().trim(), pin.storePath);
    const unknown = await fi(a, ['mirror', 'export', '--to', join(t.path, 'x'), `${reg.host}/team/other:v1`]);
    assert.is(unknown.code, 1);
    assert.match(unknown.stderr, /no pulled image in the store matches/);
  } finally {
    server?.stop();
    await reg.stop().catch(() => undefined);
    t.remove();
  }
});

test.run();
