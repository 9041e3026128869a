// The HTTP binary cache: real Nix substitutes from it; our substituters use it as the only source.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { BUILTIN_BUILDERS, fetchUrlRecipe } from '../lib/builders/index.js';
import { hashFile, parseHash } from '../lib/hash/index.js';
import {
  binaryCacheSubstituter, exportToCache, formatPublicKey, generateKeyPair, parseNarInfo, serveStore, substituteFromCaches,
} from '../lib/mirror/index.js';
import { outputPath, realise } from '../lib/recipe/index.js';
import { LocalStore, parseStorePath } from '../lib/store/index.js';
import { havePeer } from './helpers/peers.js';
import { runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';
import { makeClosure } from './mirror-fixtures.js';

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A request with the path sent exactly as given (fetch() would normalise `..` away). */
function raw(url: string, method: string, path: string): Promise<Raw> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, method, path }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test('HTTP cache: content types, HEAD, read-only, no way out of the store, bounded concurrency', async () => {
  const t = tempDir('fi-mirror-serve-');
  const store = new LocalStore({ root: join(t.path, 'src') });
  const c = await makeClosure(store, t.path);
  const key = generateKeyPair('serve-1');
  const srv = await serveStore(store, { signKey: key, maxConcurrent: 2 });
  try {
    assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const info = await raw(srv.url, 'GET', '/nix-cache-info');
    assert.is(info.headers['content-type'], 'text/x-nix-cache-info');
    assert.is(info.body.toString(), 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n');
    const hp = parseStorePath(c.top).hashPart;
    const ni = await raw(srv.url, 'GET', `/${hp}.narinfo`);
    assert.is(ni.status, 200);
    assert.is(ni.headers['content-type'], 'text/x-nix-narinfo');
    const parsed = parseNarInfo(ni.body.toString(), 'served');
    assert.is(parsed.storePath, c.top);
    assert.ok(parsed.sigs.some((s) => s.startsWith('serve-1:')));
    const head = await raw(srv.url, 'HEAD', `/${parsed.url}`);
    assert.is(head.status, 200);
    assert.is(head.headers['content-type'], 'application/x-nix-nar');
    assert.is(head.headers['content-length'], String(parsed.narSize));
    assert.is(head.body.length, 0);
    const nar = await raw(srv.url, 'GET', `/${parsed.url}`);
    assert.is(nar.body.length, parsed.narSize);
    for (const m of ['POST', 'PUT', 'DELETE']) {
      const r = await raw(srv.url, m, `/${hp}.narinfo`);
      assert.is(r.status, 405, m);
      assert.is(r.headers.allow, 'GET, HEAD');
    }
    const narHash = parseHash(store.requireInfo(c.top).narHash).nix32;
    for (const p of ['/../../../etc/passwd', '/nar/../../etc/passwd', `/nar/${hp}-${narHash}.nar/../../x`, '/%2e%2e/%2e%2e/etc/passwd',
      `/${hp}.narinfo/../x`, `/nar/${hp}-${'0'.repeat(52)}.nar`, '/nar/', '/', `/${'0'.repeat(32)}.narinfo`, '/etc/passwd']) {
      const r = await raw(srv.url, 'GET', p);
      assert.is(r.status, 404, p);
      assert.not.match(r.body.toString(), /root:/);
    }
    // More NAR requests than slots: all are served, in turn.
    const all = await Promise.all(Array.from({ length: 10 }, () => raw(srv.url, 'GET', `/${parsed.url}`)));
    assert.ok(all.every((r) => r.status === 200 && r.body.length === parsed.narSize));
  } finally {
    await srv.close();
    t.remove();
  }
});

test('real Nix substitutes from our server (none, zstd on the fly, and an exported xz directory)', async () => {
  if (!havePeer('nix')) return;
  const t = tempDir('fi-mirror-serve-nix-');
  const store = new LocalStore({ root: join(t.path, 'src') });
  const c = await makeClosure(store, t.path);
  const key = generateKeyPair('serve-1');
  const env = { ...process.env, XDG_CACHE_HOME: join(t.path, 'xdg-cache'), NIX_CONFIG: 'substituters =\nexperimental-features = nix-command' };
  const dir = join(t.path, 'exported');
  await exportToCache(store, [c.top, c.flat], dir, { compression: 'xz', signKey: key });
  const roots = [c.top, c.flat];
  try {
    for (const [label, opts] of [['none', { compression: 'none' }], ['zstd', { compression: 'zstd' }], ['dir', { cacheDir: dir }]] as const) {
      const srv = await serveStore(store, { signKey: key, ...opts });
      try {
        const root = join(t.path, `nix-${label}`);
        await runOk('nix', ['copy', '--from', srv.url, '--to', `local?root=${root}`, '--option', 'trusted-public-keys', formatPublicKey(key.publicKey), ...roots], { env });
        const got = JSON.parse((await runOk('nix', ['path-info', '--store', `local?root=${root}`, '--json', '--recursive', ...roots], { env })).toString()) as { path: string; narHash: string }[];
        const want = store.closure(roots).map((p) => ({ path: p, narHash: parseHash(store.requireInfo(p).narHash).sri })).sort((a, b) => (a.path < b.path ? -1 : 1));
        assert.equal(got.map(({ path, narHash }) => ({ path, narHash })).sort((a, b) => (a.path < b.path ? -1 : 1)), want, label);
      } finally {
        await srv.close();
      }
    }
  } finally {
    t.remove();
  }
});

test('a second store gets paths with the server as the only source: realise() through binaryCacheSubstituter, closures through substituteFromCaches', async () => {
  const t = tempDir('fi-mirror-subst-');
  const store = new LocalStore({ root: join(t.path, 'src') });
  const c = await makeClosure(store, t.path);
  const key = generateKeyPair('serve-1');
  const srv = await serveStore(store, { signKey: key, compression: 'zstd' });
  try {
    const flatHash = await hashFile(store.realPath(c.flat));
    // The URL is unreachable: only the cache can make this fixed output valid.
    const recipe = fetchUrlRecipe({ url: 'http://127.0.0.1:9/flat.bin', name: 'flat.bin', hash: flatHash, curlOpts: '--retry 0' });
    assert.is(outputPath(recipe), c.flat);
    const cfg = { substituters: [srv.url], trustedPublicKeys: [formatPublicKey(key.publicKey)], requireSigs: true };
    const other = new LocalStore({ root: join(t.path, 'other') });
    const logs: string[] = [];
    const r = await realise(other, recipe, { builders: BUILTIN_BUILDERS, substituters: [binaryCacheSubstituter(cfg)], log: (l) => logs.push(l) });
    assert.is(r.source, 'substituted', logs.join('\n'));
    assert.is(r.info.narHash, store.requireInfo(c.flat).narHash);
    // An untrusted signer is refused, and realise falls back to the (failing) builder.
    const third = new LocalStore({ root: join(t.path, 'third') });
    const wrong = binaryCacheSubstituter({ ...cfg, trustedPublicKeys: [formatPublicKey(generateKeyPair('x-1').publicKey)] });
    const failed = await realise(third, recipe, { builders: BUILTIN_BUILDERS, substituters: [wrong], log: (l) => logs.push(l) }).then(() => false, () => true);
    assert.ok(failed);
    assert.ok(logs.some((l) => /signed only by serve-1/.test(l)), logs.join('\n'));
    assert.is(third.isValid(c.flat), false);
    // A path with references: substituteFromCaches imports the closure with full metadata.
    const info = await substituteFromCaches(other, c.top, [join(t.path, 'nowhere'), srv.url], cfg.trustedPublicKeys);
    assert.ok(info);
    assert.equal(info!.references, store.requireInfo(c.top).references);
    assert.ok(other.isValid(c.dep) && other.isValid(c.note));
    assert.is(await substituteFromCaches(third, c.top, [srv.url], []), undefined, 'unsigned by a trusted key: not substituted');
  } finally {
    await srv.close();
    t.remove();
  }
});

test.run();
