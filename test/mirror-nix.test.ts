// Binary caches, keys and bundles against real Nix 2.8, both directions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createReadStream, mkdirSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseHash } from '../lib/hash/index.js';
import {
  exportToCache, formatPublicKey, formatSecretKey, generateKeyPair, importFromCache, openCache, parsePublicKey, parseSecretKey,
  readBundle, writeBundleFile,
} from '../lib/mirror/index.js';
import { LocalStore } from '../lib/store/index.js';
import { rejects } from './helpers/assert.js';
import { havePeer } from './helpers/peers.js';
import { run, runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';
import { makeClosure, type Closure } from './mirror-fixtures.js';

interface NixInfo {
  path: string;
  narHash: string;
  narSize: number;
  references: string[];
  ca?: string;
  signatures?: string[];
}

/** Nix with a private cache dir and no configured substituters, so runs are hermetic. */
function nixEnv(t: string): NodeJS.ProcessEnv {
  return { ...process.env, XDG_CACHE_HOME: join(t, 'xdg-cache'), NIX_CONFIG: 'substituters =\nexperimental-features = nix-command' };
}

async function nixPathInfo(env: NodeJS.ProcessEnv, root: string, paths: string[]): Promise<NixInfo[]> {
  const out = await runOk('nix', ['path-info', '--store', `local?root=${root}`, '--json', '--recursive', ...paths], { env });
  return (JSON.parse(out.toString()) as NixInfo[]).sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** Our store's view in Nix's terms (SRI NAR hashes) for comparison. */
function ours(store: LocalStore, paths: string[]): NixInfo[] {
  return store.closure(paths).sort().map((p) => {
    const i = store.requireInfo(p);
    const o: NixInfo = { path: p, narHash: parseHash(i.narHash).sri, narSize: i.narSize, references: [...i.references].sort() };
    if (i.ca) o.ca = i.ca;
    return o;
  });
}

/** Paths that went through nix-store --import lose their CA (the export format has none). */
const noCa = (xs: NixInfo[]): NixInfo[] => xs.map(({ ca: _ca, ...r }) => r);

const strip = (xs: NixInfo[]): NixInfo[] => xs.map(({ path, narHash, narSize, references, ca }) => ({ path, narHash, narSize, references: [...references].sort(), ...(ca ? { ca } : {}) }));

async function setup(): Promise<{ t: ReturnType<typeof tempDir>; env: NodeJS.ProcessEnv; src: LocalStore; c: Closure; roots: string[] }> {
  const t = tempDir('fi-mirror-nix-');
  const src = new LocalStore({ root: join(t.path, 'src') });
  const c = await makeClosure(src, t.path);
  return { t, env: nixEnv(t.path), src, c, roots: [c.top, c.flat] };
}

test('real Nix copies from our export (xz, zstd, none) with our signature: same paths, NAR hashes, references, CA', async () => {
  if (!havePeer('nix')) return;
  const { t, env, src, c, roots } = await setup();
  try {
    const key = generateKeyPair('ours-1');
    for (const compression of ['xz', 'zstd', 'none'] as const) {
      const dir = join(t.path, `cache-${compression}`);
      await exportToCache(src, roots, dir, { compression, signKey: key });
      const root = join(t.path, `nix-${compression}`);
      await runOk('nix', ['copy', '--from', `file://${dir}`, '--to', `local?root=${root}`, '--option', 'trusted-public-keys', formatPublicKey(key.publicKey), ...roots], { env });
      const got = await nixPathInfo(env, root, roots);
      assert.equal(strip(got), ours(src, roots), compression);
      assert.ok(got.find((i) => i.path === c.top)!.signatures!.some((s) => s.startsWith('ours-1:')));
    }
    // Nix itself refuses the input-addressed path when it does not trust the signer.
    const r = await run('nix', ['copy', '--from', `file://${join(t.path, 'cache-none')}`, '--to', `local?root=${join(t.path, 'nix-untrusted')}`,
      '--option', 'trusted-public-keys', formatPublicKey(generateKeyPair('other-1').publicKey), c.top], { env });
    assert.is.not(r.code, 0);
    assert.match(r.stderr, /lacks a valid signature/);
  } finally {
    t.remove();
  }
});

test('our import reads caches nix copy wrote (xz, zstd, br, gzip, bzip2, none), signed with a key from nix-store --generate-binary-cache-key', async () => {
  if (!havePeer('nix')) return;
  const { t, env, src, c, roots } = await setup();
  try {
    // Get the closure into a real Nix store through our bundle (nix-store --import).
    const bundle = join(t.path, 'closure.bundle');
    await writeBundleFile(src, roots, bundle);
    const nixRoot = join(t.path, 'nix');
    await runOk('nix-store', ['--store', `local?root=${nixRoot}`, '--option', 'require-sigs', 'false', '--import'], { env, input: readFileSync(bundle) });
    // And a path Nix added itself, content-addressed, signed afterwards with `nix store sign`.
    const tree = join(t.path, 'tree');
    mkdirSync(join(tree, 'd'), { recursive: true });
    writeFileSync(join(tree, 'd', 'f'), 'from nix-store --add-fixed\n');
    const added = (await runOk('nix-store', ['--store', `local?root=${nixRoot}`, '--add-fixed', '--recursive', 'sha256', tree], { env })).toString().trim();
    const sk = join(t.path, 'nix.sk');
    const pk = join(t.path, 'nix.pk');
    await runOk('nix-store', ['--generate-binary-cache-key', 'nixkey-1', sk, pk], { env });
    await runOk('nix', ['store', 'sign', '--store', `local?root=${nixRoot}`, '--key-file', sk, added], { env });
    const [addedInfo] = await nixPathInfo(env, nixRoot, [added]);
    for (const compression of ['xz', 'zstd', 'br', 'gzip', 'bzip2', 'none']) {
      const dir = join(t.path, `nixcache-${compression}`);
      await runOk('nix', ['copy', '--store', `local?root=${nixRoot}`, '--to', `file://${dir}?compression=${compression}&secret-key=${sk}`, ...roots], { env });
      await runOk('nix', ['copy', '--store', `local?root=${nixRoot}`, '--to', `file://${dir}?compression=${compression}`, added], { env });
      const dst = new LocalStore({ root: join(t.path, `ours-${compression}`) });
      await importFromCache(dst, openCache(`file://${dir}`), [...roots, added], { trustedKeys: [parsePublicKey(readFileSync(pk, 'utf8'), pk)] });
      // The CAs Nix's cache lost (the paths came in through nix-store --import) are proven again from name and content.
      assert.equal(ours(dst, roots), ours(src, roots), compression);
      assert.equal(ours(dst, [added]), strip([addedInfo!]), `${compression}: the --add-fixed path, CA included`);
      assert.ok(dst.requireInfo(c.top).signatures.some((s) => s.startsWith('nixkey-1:')));
      // Without the key the input-addressed path is refused.
      const other = new LocalStore({ root: join(t.path, `ours-untrusted-${compression}`) });
      await rejects(() => importFromCache(other, openCache(dir), [c.top], { trustedKeys: [] }), /is signed only by nixkey-1/);
      if (compression === 'none') continue;
      // Every NAR cut in half: refused with a one-line reason, nothing registered.
      const cut = join(t.path, `nixcache-cut-${compression}`);
      await runOk('cp', ['-r', dir, cut]);
      for (const f of readdirSync(join(cut, 'nar'))) truncateSync(join(cut, 'nar', f), Math.floor(statSync(join(cut, 'nar', f)).size / 2));
      const broken = new LocalStore({ root: join(t.path, `ours-cut-${compression}`) });
      const err = await rejects(() => importFromCache(broken, openCache(cut), [added], { trustedKeys: [parsePublicKey(readFileSync(pk, 'utf8'), pk)] }),
        new RegExp(`^refusing .*-tree from .*/nar/\\w+\\.nar[.\\w]*: (corrupt or truncated ${compression} data|invalid zstd data: .*truncated)`));
      assert.not.match(err.message, /\n|Cannot read properties/, `${compression}: ${err.message}`);
      assert.equal(broken.list(), [], compression);
    }
  } finally {
    t.remove();
  }
});

test('key files are interchangeable: Nix signs with our key, we sign with Nix\'s; each side verifies the other', async () => {
  if (!havePeer('nix')) return;
  const { t, env, src, roots } = await setup();
  try {
    const bundle = join(t.path, 'closure.bundle');
    await writeBundleFile(src, roots, bundle);
    const nixRoot = join(t.path, 'nix');
    await runOk('nix-store', ['--store', `local?root=${nixRoot}`, '--option', 'require-sigs', 'false', '--import'], { env, input: readFileSync(bundle) });
    // Ours → Nix: `nix store sign --key-file` with the secret file our keygen format writes.
    const mine = generateKeyPair('mine-1');
    const mineSk = join(t.path, 'mine.secret');
    writeFileSync(mineSk, formatSecretKey(mine));
    await runOk('nix', ['store', 'sign', '--store', `local?root=${nixRoot}`, '--key-file', mineSk, '--recursive', ...roots], { env });
    const dir = join(t.path, 'cache-signed-by-nix');
    await runOk('nix', ['copy', '--store', `local?root=${nixRoot}`, '--to', `file://${dir}?compression=none`, ...roots], { env });
    const dst = new LocalStore({ root: join(t.path, 'dst') });
    await importFromCache(dst, openCache(dir), roots, { trustedKeys: [mine.publicKey] });
    assert.equal(ours(dst, roots), ours(src, roots), 'content addresses proven again on import');
    // Nix → ours: a Nix-generated secret key signs our export; Nix verifies with its public file.
    const sk = join(t.path, 'nix.sk');
    const pk = join(t.path, 'nix.pk');
    await runOk('nix-store', ['--generate-binary-cache-key', 'nixkey-2', sk, pk], { env });
    const nixKey = parseSecretKey(readFileSync(sk, 'utf8'), sk);
    assert.is(formatPublicKey(nixKey.publicKey), readFileSync(pk, 'utf8').trim());
    assert.is(formatSecretKey(nixKey), readFileSync(sk, 'utf8').trim());
    const ourCache = join(t.path, 'cache-signed-by-us');
    await exportToCache(src, roots, ourCache, { compression: 'zstd', signKey: nixKey });
    const root2 = join(t.path, 'nix2');
    await runOk('nix', ['copy', '--from', `file://${ourCache}`, '--to', `local?root=${root2}`, '--option', 'trusted-public-keys', readFileSync(pk, 'utf8').trim(), ...roots], { env });
    assert.equal(strip(await nixPathInfo(env, root2, roots)), ours(src, roots));
  } finally {
    t.remove();
  }
});

test('bundles: nix-store --import accepts ours (byte-identical to --export per path), our unbundle accepts nix-store --export', async () => {
  if (!havePeer('nix-store')) return;
  const { t, env, src, c, roots } = await setup();
  try {
    const bundle = join(t.path, 'ours.bundle');
    const order = await writeBundleFile(src, roots, bundle);
    const nixRoot = join(t.path, 'nix');
    const imported = (await runOk('nix-store', ['--store', `local?root=${nixRoot}`, '--option', 'require-sigs', 'false', '--import'], { env, input: readFileSync(bundle) }))
      .toString().trim().split('\n');
    assert.equal(imported, order);
    assert.equal(strip(await nixPathInfo(env, nixRoot, roots)), noCa(ours(src, roots)));
    for (const p of [c.dep, c.flat]) {
      const one = join(t.path, 'one.bundle');
      await writeBundleFile(src, [p], one);
      const nixOne = await runOk('nix-store', ['--store', `local?root=${nixRoot}`, '--export', p], { env });
      assert.ok(nixOne.equals(readFileSync(one)), `${p}: same bytes as nix-store --export`);
    }
    const theirs = join(t.path, 'nix.bundle');
    writeFileSync(theirs, await runOk('nix-store', ['--store', `local?root=${nixRoot}`, '--export', ...order], { env }));
    const dst = new LocalStore({ root: join(t.path, 'dst') });
    const r = await readBundle(dst, createReadStream(theirs), { where: theirs });
    assert.equal(r.map((x) => x.path).sort(), [...order].sort());
    assert.equal(ours(dst, roots), ours(src, roots), 'CA of dep, note and flat proven again');
    assert.is(dst.requireInfo(c.top).ca, undefined);
  } finally {
    t.remove();
  }
});

test.run();
