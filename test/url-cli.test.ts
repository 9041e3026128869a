// End-to-end tests of `fetch-image url` through the real CLI binary, against servers of our own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Hash } from '../lib/hash/index.js';
import { hashPath } from '../lib/nar/index.js';
import { LocalStore, makeFixedOutputPath } from '../lib/store/index.js';
import { fileHandler, startServer, testBytes } from './helpers/http-servers.js';
import { run } from './helpers/run.js';
import { CLI_PATH } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const CLI = CLI_PATH;

async function serve(routes: Record<string, Buffer>): Promise<{ url: string; server: Server; hits: string[]; auth: string[] }> {
  const hits: string[] = [];
  const auth: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    if (req.headers.authorization) auth.push(req.headers.authorization);
    const body = routes[req.url ?? ''];
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { url: `http://127.0.0.1:${port}`, server, hits, auth };
}

const fi = (store: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  run('node', [CLI, '--store', store, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });

test('prefetch prints the hash; with the hash it prints the path; then it works with the server gone', async () => {
  const t = tempDir();
  const body = Buffer.from('hello fetch-image\n'.repeat(1000));
  const srv = await serve({ '/files/hello.txt': body });
  try {
    const store = join(t.path, 's');
    const pre = await fi(store, ['url', `${srv.url}/files/hello.txt`]);
    assert.is(pre.code, 0, pre.stderr);
    const h = Hash.of('sha256', body);
    assert.is(pre.stdout.toString().trim(), h.sri);
    const expected = makeFixedOutputPath('flat', h, 'hello.txt');
    assert.match(pre.stderr, `path is '${expected}'`);

    const nix32 = await fi(store, ['url', '--base32', `${srv.url}/files/hello.txt`]);
    assert.is(nix32.stdout.toString().trim(), h.nix32);

    const hits = srv.hits.length;
    const got = await fi(store, ['url', `${srv.url}/files/hello.txt`, '--sha256', h.nix32]);
    assert.is(got.code, 0, got.stderr);
    assert.is(got.stdout.toString().trim(), expected);
    assert.is(srv.hits.length, hits, 'a valid path means no network I/O at all');
    await new Promise((r) => srv.server.close(r));
    const offline = await fi(store, ['--json', 'url', `${srv.url}/files/hello.txt`, '--hash', h.sri]);
    assert.is(offline.code, 0, offline.stderr);
    const j = JSON.parse(offline.stdout.toString()) as { storePath: string; path: string };
    assert.is(j.storePath, expected);
    assert.ok(readFileSync(j.path).equals(body));
  } finally {
    srv.server.close();
    t.remove();
  }
});

test('a body cut mid-way, resumed or restarted from 0, still gives the right flat and NAR hashes', async () => {
  const t = tempDir();
  const data = testBytes(3 * 1024 * 1024 + 17);
  const servers = await Promise.all([
    startServer(fileHandler({ data, plan: [{ kind: 'drop', after: 1_500_000 }] })),
    startServer(fileHandler({ data, ranges: false, plan: [{ kind: 'drop', after: 1_200_000 }] })),
  ]);
  try {
    const flat = Hash.of('sha256', data);
    for (const [i, s] of servers.entries()) {
      const store = join(t.path, `s${i}`);
      const r = await fi(store, ['--json', 'url', s.url('/blob.bin'), '--hash', flat.sri]);
      assert.is(r.code, 0, r.stderr);
      assert.ok(s.requests.length >= 2, 'the break was noticed and the download went on');
      const ex = await fi(store, ['--json', 'url', '--executable', '--name', 'tool', s.url('/blob.bin')]);
      assert.is(ex.code, 0, ex.stderr);
      const exPath = (JSON.parse(ex.stdout.toString()) as { path: string }).path;
      assert.is(JSON.parse(ex.stdout.toString()).hash, (await hashPath(exPath)).hash.sri, 'NAR hash of the executable file');
      assert.equal((await new LocalStore({ root: store }).verify({ checkContents: true })).problems, [], 'registered NAR hashes are right');
    }
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    t.remove();
  }
});

test('wrong hash: Nix\'s message, exit 102, nothing registered, temp cleaned', async () => {
  const t = tempDir();
  const srv = await serve({ '/x.bin': Buffer.from('actual bytes') });
  try {
    const store = join(t.path, 's');
    const wrong = Hash.of('sha256', 'what was pinned');
    const r = await fi(store, ['url', `${srv.url}/x.bin`, '--sha256', wrong.base16]);
    assert.is(r.code, 102);
    const lines = r.stderr.trimEnd().split('\n');
    assert.match(lines[0]!, /^error: hash mismatch in fixed-output derivation '\/nix\/store\/[0-9a-z]{32}-x\.bin\.recipe\.json':$/);
    assert.is(lines[1], `  specified: ${wrong.sri}`);
    assert.is(lines[2], `     got:    ${Hash.of('sha256', 'actual bytes').sri}`);
    const s = new LocalStore({ root: store });
    assert.equal(s.list(), [], 'not even the recipe is registered');
    assert.equal(readdirSync(join(store, 'nix/var/fetch-image/tmp')), []);
    assert.not.ok(existsSync(s.realPath(makeFixedOutputPath('flat', wrong, 'x.bin'))));
    const kept = await fi(store, ['url', `${srv.url}/x.bin`, '--sha256', wrong.base16, '--keep-failed']);
    assert.is(kept.code, 102);
    const dir = /kept at '([^']+)'/.exec(kept.stderr)?.[1];
    assert.ok(dir && readFileSync(join(dir, 'out'), 'utf8') === 'actual bytes');
  } finally {
    srv.server.close();
    t.remove();
  }
});

test('hashed mirror is tried first; --executable hashes recursively; bad arguments exit 2', async () => {
  const t = tempDir();
  const body = Buffer.from('#!/bin/sh\necho hi\n');
  const h = Hash.of('sha256', body);
  const origin = await serve({ '/tool.sh': body });
  const mirror = await serve({ [`/sha256/${h.base16}`]: body });
  try {
    const store = join(t.path, 's');
    const r = await fi(store, ['url', `${origin.url}/tool.sh`, '--sha256', h.sri, '--hashed-mirror', mirror.url], { NIX_CURL_FLAGS: '-u user:secret' });
    assert.is(r.code, 0, r.stderr);
    assert.equal(origin.hits, [], 'origin untouched when the mirror has it');
    assert.equal(mirror.hits, [`/sha256/${h.base16}`]);
    assert.equal(mirror.auth, [], 'credentials meant for the origin never reach a mirror');

    const ex = await fi(store, ['url', '--executable', '--name', 'tool', `${origin.url}/tool.sh`]);
    assert.is(ex.code, 0, ex.stderr);
    const p = join(t.path, 'probe');
    writeFileSync(p, body, { mode: 0o755 });
    assert.is(ex.stdout.toString().trim(), (await hashPath(p)).hash.sri);
    const s = new LocalStore({ root: store });
    const exe = s.list().find((i) => i.path.endsWith('-tool'))!;
    assert.ok(statSync(s.realPath(exe.path)).mode & 0o100);

    assert.is((await fi(store, ['url', `${origin.url}/tool.sh`, '--sha256', 'nonsense'])).code, 2);
    assert.is((await fi(store, ['url', 'ftp://example.org/x'])).code, 2, 'an unsupported scheme is a usage error');
  } finally {
    origin.server.close();
    mirror.server.close();
    t.remove();
  }
});

test('--unpack strips one top-level directory and hashes recursively; hostile tar refused', async () => {
  const t = tempDir();
  try {
    const src = join(t.path, 'src');
    mkdirSync(join(src, 'pkg-1.0', 'bin'), { recursive: true });
    writeFileSync(join(src, 'pkg-1.0', 'README'), 'readme\n');
    writeFileSync(join(src, 'pkg-1.0', 'bin', 'run'), '#!/bin/sh\n', { mode: 0o755 });
    execFileSync('tar', ['-C', src, '-czf', join(t.path, 'pkg.tar.gz'), 'pkg-1.0']);
    execFileSync('python3', ['-c', `
import tarfile, io
with tarfile.open('${join(t.path, 'evil.tar')}', 'w') as tf:
    data = b'pwned'
    ti = tarfile.TarInfo('top/../../escape'); ti.size = len(data); tf.addfile(ti, io.BytesIO(data))
`]);
    const srv = await serve({ '/pkg.tar.gz': readFileSync(join(t.path, 'pkg.tar.gz')), '/evil.tar': readFileSync(join(t.path, 'evil.tar')) });
    try {
      const store = join(t.path, 's');
      const r = await fi(store, ['url', '--unpack', `${srv.url}/pkg.tar.gz`]);
      assert.is(r.code, 0, r.stderr);
      assert.is(r.stdout.toString().trim(), (await hashPath(join(src, 'pkg-1.0'))).hash.sri);
      const evil = await fi(store, ['url', '--unpack', `${srv.url}/evil.tar`]);
      assert.is(evil.code, 1);
      assert.match(evil.stderr, /top\/\.\.\/\.\.\/escape/);
      assert.not.ok(existsSync(join(t.path, 'escape')));
      assert.equal(readdirSync(join(store, 'nix/var/fetch-image/tmp')), []);
    } finally {
      srv.server.close();
    }
  } finally {
    t.remove();
  }
});

test.run();
