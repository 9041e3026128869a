/** Hashed mirrors: tried first, verified, and never fatal when the origin is right. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Hash } from '../lib/hash/index.js';
import { closeDispatchers, downloadWithMirrors, hashedMirrorUrls, mirrorsFromEnv, type FetchOptions } from '../lib/fetch/index.js';
import { fileHandler, startServer, testBytes, type Handler, type TestServer } from './helpers/http-servers.js';
import { freePort } from './helpers/net.js';
import { tempDir } from './helpers/tmp.js';

const FAST: FetchOptions = { retryBaseMs: 5, stallTimeoutMs: 5000 };
const DATA = testBytes(70_000, 7);
const SHA = Hash.of('sha256', DATA);
const MIRROR_PATH = `/sha256/${SHA.base16}`;

/** A mirror serving `data` at the content-addressed path of SHA, 404 elsewhere. */
function mirrorHandler(data: Buffer): Handler {
  const serve = fileHandler({ data });
  return (req, res, i) => {
    if (req.url === MIRROR_PATH) serve(req, res, i);
    else {
      res.writeHead(404);
      res.end();
    }
  };
}

async function withServers(handlers: Handler[], fn: (servers: TestServer[], dir: string) => Promise<void>): Promise<void> {
  const servers: TestServer[] = [];
  const dir = tempDir();
  try {
    for (const h of handlers) servers.push(await startServer(h));
    await fn(servers, dir.path);
  } finally {
    for (const s of servers) await s.close();
    dir.remove();
  }
}

test('mirror URLs and NIX_HASHED_MIRRORS', () => {
  assert.equal(mirrorsFromEnv({ NIX_HASHED_MIRRORS: '  http://a/ http://b  ' }), ['http://a/', 'http://b']);
  assert.equal(mirrorsFromEnv({}), []);
  assert.equal(hashedMirrorUrls(SHA, ['http://tarballs.nixos.org/', 'http://m']), [
    `http://tarballs.nixos.org/sha256/${SHA.base16}`,
    `http://m/sha256/${SHA.base16}`,
  ]);
  const md5 = Hash.of('md5', 'x');
  assert.equal(hashedMirrorUrls(md5, ['http://m']), [`http://m/md5/${md5.base16}`]);
});

test('a hashed mirror is tried before the origin; a 404 mirror just moves on', () =>
  withServers([mirrorHandler(Buffer.from('unused')), mirrorHandler(DATA), fileHandler({ data: DATA })], async ([empty, good, origin], dir) => {
    // The first mirror has the path but a different file: to it the hash path is unknown (404).
    const skips: string[] = [];
    const dest = join(dir, 'out');
    const env = { NIX_HASHED_MIRRORS: `${empty!.origin}/nothing-here ${good!.origin}` };
    const r = await downloadWithMirrors(origin!.url('/file.tar'), dest, SHA, { ...FAST, env, onSkip: (u, why) => skips.push(`${u} ${why}`) });
    assert.is(r.source, 'mirror');
    assert.is(r.sourceUrl, good!.url(MIRROR_PATH));
    assert.ok(r.matches);
    assert.ok(r.hash.equals(SHA));
    assert.ok(readFileSync(dest).equals(DATA));
    assert.equal(skips, [`${empty!.origin}/nothing-here${MIRROR_PATH} download of ${empty!.origin}/nothing-here${MIRROR_PATH} failed: HTTP 404 Not Found`]);
    assert.is(empty!.requests.length, 1, 'no retries against a mirror');
    assert.is(origin!.requests.length, 0, 'origin never asked');
  }));

test('a mirror with the wrong bytes falls back to the origin, whose bytes replace them', () =>
  withServers([mirrorHandler(testBytes(90_000, 99)), fileHandler({ data: DATA })], async ([liar, origin], dir) => {
    const dest = join(dir, 'out');
    const r = await downloadWithMirrors(origin!.url('/file.tar'), dest, SHA, { ...FAST, env: {}, mirrors: [liar!.origin] });
    assert.is(r.source, 'origin');
    assert.ok(r.matches);
    assert.ok(r.hash.equals(SHA));
    assert.is(r.size, DATA.length);
    assert.ok(readFileSync(dest).equals(DATA), 'the file holds only the origin bytes');
    assert.is(r.skipped.length, 1);
    assert.match(r.skipped[0]!.reason, /^hash mismatch: got sha256-/);
  }));

test('an unreachable mirror is skipped quickly; credentials go to the origin only', async () => {
  const deadPort = await freePort();
  await withServers([mirrorHandler(DATA), fileHandler({ data: DATA })], async ([mirror, origin], dir) => {
    const t0 = Date.now();
    const r = await downloadWithMirrors(origin!.url('/private.tar'), join(dir, 'out'), SHA, {
      ...FAST,
      env: {},
      mirrors: [`http://127.0.0.1:${deadPort}`, mirror!.origin],
      headers: { Authorization: 'Bearer secret-token', Cookie: 'c=1', 'X-Other': 'y' },
    });
    assert.ok(Date.now() - t0 < 3000);
    assert.is(r.source, 'mirror');
    assert.match(r.skipped[0]!.reason, /ECONNREFUSED/);
    const h = mirror!.requests[0]!.headers;
    assert.is(h.authorization, undefined);
    assert.is(h.cookie, undefined);
    assert.is(h['x-other'], 'y');
  });
});

test('origin bytes with the wrong hash are returned with matches=false (the caller reports it)', () =>
  withServers([fileHandler({ data: testBytes(1000, 5) })], async ([origin], dir) => {
    const r = await downloadWithMirrors(origin!.url('/f'), join(dir, 'out'), SHA, { ...FAST, env: {}, mirrors: [] });
    assert.is(r.source, 'origin');
    assert.is(r.matches, false);
    assert.ok(r.hash.equals(Hash.of('sha256', testBytes(1000, 5))));
  }));

test('several origin URLs are tried in order; the last failure is thrown', () =>
  withServers([(_q, res) => { res.writeHead(404); res.end(); }, fileHandler({ data: DATA })], async ([dead, origin], dir) => {
    const r = await downloadWithMirrors([dead!.url('/a'), origin!.url('/b')], join(dir, 'out'), SHA, { ...FAST, env: {}, mirrors: [] });
    assert.is(r.sourceUrl, origin!.url('/b'));
    assert.is(r.skipped[0]!.reason, `download of ${dead!.url('/a')} failed: HTTP 404 Not Found`);
    let err: Error | undefined;
    try {
      await downloadWithMirrors([dead!.url('/a'), dead!.url('/c')], join(dir, 'out'), SHA, { ...FAST, env: {}, mirrors: [] });
    } catch (e) {
      err = e as Error;
    }
    assert.is(err?.message, `download of ${dead!.url('/c')} failed: HTTP 404 Not Found`);
  }));

test.after(async () => {
  await closeDispatchers();
});

test.run();
