import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, createReadStream, mkdirSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Hash } from '../lib/hash/index.js';
import {
  compressor, decompressor, exportToCache, formatNarInfo, formatPublicKey, formatSecretKey, generateKeyPair, importFromCache, loadMirrorConfig, mirrorConfigPath,
  narInfoFingerprint, openCache, parseNarInfo, parsePublicKey, parseSecretKey, readBundle, signText, unsafeUrlReason, verifyText,
  writeBundleFile, type SecretKey,
} from '../lib/mirror/index.js';
import { encodeStr } from '../lib/nar/index.js';
import { LocalStore, makeStorePath, parseStorePath } from '../lib/store/index.js';
import { rejects } from './helpers/assert.js';
import { havePeer } from './helpers/peers.js';
import { run, runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';
import { hostileNar, makeClosure, snapshot, type Closure } from './mirror-fixtures.js';
import { CLI_PATH } from './helpers/cli.js';

// A narinfo exactly as Nix 2.8 wrote it (nix copy --to file://…?compression=xz), signed with test-1.
const NIX_NARINFO = `StorePath: /nix/store/xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c-f
URL: nar/17gd6zzlkx90irc6qawagdkgh1d7qvlnq46yjf7xiqw9ycz7zq4a.nar.xz
Compression: xz
FileHash: sha256:17gd6zzlkx90irc6qawagdkgh1d7qvlnq46yjf7xiqw9ycz7zq4a
FileSize: 128
NarHash: sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw
NarSize: 120
References: 
Sig: test-1:XAfmIG/qraKRWt4c3EY7X/cCcHlXqW6UenzQPe2qNkLdey7v3qrllacbRL+z0FXAvhHskfU+QoZdujhF01qwCg==
CA: fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw
`;
const NIX_PUBLIC = 'test-1:+QzlIbTnwpvlfG2cdtxyOEpsNOjzABDNmv/RenlW104=';

test('narinfo: parses what Nix writes and prints it back byte for byte; its signature verifies', () => {
  const ni = parseNarInfo(NIX_NARINFO, 'x.narinfo');
  assert.is(formatNarInfo(ni), NIX_NARINFO);
  assert.is(ni.narSize, 120);
  assert.equal(ni.references, []);
  assert.is(narInfoFingerprint(ni), '1;/nix/store/xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c-f;sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw;120;');
  assert.ok(verifyText(narInfoFingerprint(ni), ni.sigs[0]!, [parsePublicKey(NIX_PUBLIC)]));
  assert.not.ok(verifyText(narInfoFingerprint({ ...ni, narSize: 121 }), ni.sigs[0]!, [parsePublicKey(NIX_PUBLIC)]));
  assert.not.ok(verifyText(narInfoFingerprint(ni), ni.sigs[0]!, [generateKeyPair('test-1').publicKey]), 'same name, other key');
});

test('narinfo: refuses bad store paths, references, hashes and URLs that leave the cache', () => {
  const bad = (from: string, to: string, msg: RegExp) => assert.throws(() => parseNarInfo(NIX_NARINFO.replace(from, to), 'c/x.narinfo'), msg);
  bad('StorePath: /nix/store/', 'StorePath: /etc/', /StorePath '\/etc\/.*' is not a valid path/);
  bad('References: ', 'References: ../../etc', /reference '..\/..\/etc' is not a valid store path name/);
  bad('References: ', 'References: xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c-a/b', /not a valid store path name/);
  bad('URL: nar/', 'URL: ../', /URL '..\/.*' is refused: it has an empty, '.' or '..' segment/);
  bad('URL: nar/', 'URL: /etc/', /refused: it is absolute/);
  bad('URL: nar/', 'URL: http://evil/', /refused: it has characters/);
  bad('URL: nar/', 'URL: nar/%2e%2e/', /refused: it has characters/);
  bad('NarSize: 120', 'NarSize: -1', /NarSize '-1' is not a number/);
  bad('NarHash: sha256:', 'NarHash: md5:', /NarHash/);
  bad('Compression: xz\n', 'Compression: xz\nCompression: xz\n', /appears twice/);
  assert.is(unsafeUrlReason('nar/abc.nar.xz'), undefined);
});

test('keys: Nix key files parse; ours round-trip; corrupt keys are refused with their source named', () => {
  const sk = parseSecretKey('test-1:RDBPm4gPeEsYCwb+UQSrGURa4XutH5+vhTorm1zxRmP5DOUhtOfCm+V8bZx23HI4Smw06PMAEM2a/9F6eVbXTg==', 'sk');
  assert.is(formatPublicKey(sk.publicKey), NIX_PUBLIC);
  const ni = parseNarInfo(NIX_NARINFO, 'x');
  assert.is(signText(sk, narInfoFingerprint(ni)), ni.sigs[0], 'Ed25519 is deterministic: our signature equals Nix\'s');
  const k = generateKeyPair('mine-1');
  assert.is(formatSecretKey(parseSecretKey(formatSecretKey(k))), formatSecretKey(k));
  assert.throws(() => parseSecretKey('nocolon', 'k.secret'), /secret key k.secret is not in the form NAME:BASE64/);
  assert.throws(() => parsePublicKey('a:AAAA', 'opt'), /public key opt is corrupt/);
  const raw = Buffer.from(formatSecretKey(k).split(':')[1]!, 'base64');
  raw[40] ^= 1;
  assert.throws(() => parseSecretKey(`x:${raw.toString('base64')}`, 'f'), /public half does not match/);
  assert.throws(() => generateKeyPair('a:b'), /invalid key name/);
});

async function through(input: Buffer, t: Transform | undefined, piece: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  const src = Readable.from((function* () { for (let i = 0; i < input.length; i += piece) yield input.subarray(i, i + piece); })());
  if (!t) return input;
  await pipeline(src, t, new Writable({ write(c: Buffer, _e, cb) { parts.push(c); cb(); } }));
  return Buffer.concat(parts);
}

test('compression: xz and multi-frame zstd round-trip in odd pieces; zstd CLI frames decode; damage is an error', async () => {
  const data = Buffer.alloc(20 * 1024 * 1024 + 12345);
  for (let i = 0; i < data.length; i += 64) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  for (const c of ['zstd', 'xz'] as const) {
    const input = c === 'xz' ? data.subarray(0, 1 << 18) : data; // zstd: several frames; xz: keep the test quick
    const z = await through(input, compressor(c), 1 << 20);
    assert.ok(z.length < input.length / 2, c);
    assert.ok((await through(z, decompressor(c, c), 77_777)).equals(input), `${c} round trip`);
    await rejects(() => through(z.subarray(0, z.length - 9), decompressor(c, c), 65536), /./);
  }
  if (havePeer('zstd')) {
    // One big frame (as Nix writes) goes through the streaming fallback; skippable frames are skipped.
    const single = await runOk('zstd', ['-3', '-c'], { input: data });
    assert.ok((await through(single, decompressor('zstd', 'z'), 65536)).equals(data));
    const skip = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]), await runOk('zstd', ['-c'], { input: 'abc' })]);
    assert.is((await through(skip, decompressor('zstd', 'z'), 5)).toString(), 'abc');
  }
  await rejects(() => through(Buffer.from('not zstd at all'), decompressor('zstd', 'z'), 4), /invalid zstd data: not zstd data/);
  assert.throws(() => decompressor('lz4', 'c/x.narinfo'), /c\/x.narinfo: compression 'lz4' is not supported \(xz, zstd, br, gzip, bzip2 and none are\)/);
});

interface World {
  t: { path: string; remove: () => void };
  src: LocalStore;
  c: Closure;
  key: SecretKey;
}

async function world(): Promise<World> {
  const t = tempDir('fi-mirror-');
  const src = new LocalStore({ root: join(t.path, 'src') });
  const c = await makeClosure(src, t.path);
  return { t, src, c, key: generateKeyPair('test-cache-1') };
}

// caVerified is this store's own knowledge (was the content hashed against its CA here?), not path metadata that travels.
const infoSummary = (s: LocalStore) => s.list().map(({ registrationTime: _r, signatures: _s, caVerified: _v, ...rest }) => rest);

test('export → import round trip for xz, zstd and none: same paths, hashes, references, CA, deriver', async () => {
  const w = await world();
  try {
    for (const compression of ['xz', 'zstd', 'none'] as const) {
      const dir = join(w.t.path, `cache-${compression}`);
      const r = await exportToCache(w.src, [w.c.top, w.c.flat], dir, { compression, signKey: w.key });
      assert.equal(r.map((x) => x.path).slice(-1), [w.c.flat]);
      assert.ok(r.findIndex((x) => x.path === w.c.dep) < r.findIndex((x) => x.path === w.c.top), 'dependencies first');
      const again = await exportToCache(w.src, [w.c.top], dir, { compression, signKey: w.key });
      assert.ok(again.every((x) => !x.written), 'existing entries are skipped');
      const ni = parseNarInfo(readFileSync(join(dir, `${parseStorePath(w.c.top).hashPart}.narinfo`), 'utf8'), 'top');
      assert.is(ni.compression, compression);
      assert.ok(ni.url.endsWith(compression === 'xz' ? '.nar.xz' : compression === 'zstd' ? '.nar.zst' : '.nar'));
      assert.is(statSync(join(dir, ni.url)).size, ni.fileSize);
      assert.ok(readdirSync(join(dir, 'nar')).every((f) => !f.startsWith('.tmp')), 'no temp files left');
      const dst = new LocalStore({ root: join(w.t.path, `dst-${compression}`) });
      await importFromCache(dst, openCache(dir), 'all', { trustedKeys: [w.key.publicKey] });
      assert.equal(infoSummary(dst), infoSummary(w.src));
      const sigs = dst.requireInfo(w.c.top).signatures;
      assert.is(sigs.length, 1);
      assert.ok(sigs[0]!.startsWith('test-cache-1:'));
    }
  } finally {
    w.t.remove();
  }
});

/** Rewrites a narinfo in `dir` and re-signs it, so only the change under test is wrong. */
function edit(dir: string, path: string, key: SecretKey | undefined, change: (text: string) => string): void {
  const file = join(dir, `${parseStorePath(path).hashPart}.narinfo`);
  const text = change(readFileSync(file, 'utf8'));
  if (!key) return writeFileSync(file, text);
  const ni = parseNarInfo(text, file);
  writeFileSync(file, formatNarInfo({ ...ni, sigs: [signText(key, narInfoFingerprint(ni))] }));
}

test('import refuses bad entries with a one-line message naming them, and leaves the store exactly as it was', async () => {
  const w = await world();
  try {
    const good = join(w.t.path, 'good');
    await exportToCache(w.src, [w.c.top, w.c.flat], good, { compression: 'none', signKey: w.key });
    const goodZ = join(w.t.path, 'good-zstd');
    await exportToCache(w.src, [w.c.top], goodZ, { compression: 'zstd', signKey: w.key });
    const dst = new LocalStore({ root: join(w.t.path, 'dst') });
    await importFromCache(dst, openCache(good), [w.c.flat], { trustedKeys: [w.key.publicKey] }); // something already there
    const tmpDir = join(dst.root, 'nix', 'var', 'fetch-image', 'tmp');
    const cases: [string, (dir: string) => void, RegExp, string?][] = [
      ['unsigned', (d) => edit(d, w.c.top, undefined, (t) => t.replace(/^Sig: .*\n/m, '')), /top is unsigned \(trusted: test-cache-1\)/],
      ['bad signature', (d) => edit(d, w.c.top, undefined, (t) => t.replace('NarSize: ', 'NarSize: 1')), /signed only by test-cache-1, and none verifies/],
      ['unknown key', (d) => edit(d, w.c.dep, generateKeyPair('stranger-1'), (t) => t), /dep is signed only by stranger-1/],
      ['wrong NarHash', (d) => edit(d, w.c.top, w.key, (t) => t.replace(/NarHash: .*/, `NarHash: ${Hash.of('sha256', 'x').prefixed('nix32')}`)), /refusing .*-top from .*: (NarHash mismatch|FileHash mismatch)/],
      ['truncated NAR', (d) => {
        const ni = parseNarInfo(readFileSync(join(d, `${parseStorePath(w.c.dep).hashPart}.narinfo`), 'utf8'), 'dep');
        truncateSync(join(d, ni.url), ni.fileSize! - 100);
      }, /refusing .*-dep from .*: NAR is truncated/],
      ['truncated zstd NAR', (d) => {
        const ni = parseNarInfo(readFileSync(join(d, `${parseStorePath(w.c.dep).hashPart}.narinfo`), 'utf8'), 'dep');
        truncateSync(join(d, ni.url), Math.floor(ni.fileSize! / 2));
      }, /refusing .*-dep from .*: .*(truncated|zstd)/, 'zstd'],
      ['URL outside the cache', (d) => edit(d, w.c.note, undefined, (t) => t.replace(/^URL: .*/m, 'URL: ../good/nar/x.nar')), /narinfo: URL '..\/good\/nar\/x.nar' is refused/],
      ['reference that is no store path', (d) => edit(d, w.c.top, undefined, (t) => t.replace(/^References: /m, 'References: ../x ')), /reference '..\/x' is not a valid store path name/],
      // Nix refuses cycles: dep made to refer back to top (signed, so only the cycle is wrong).
      ['reference cycle', (d) => edit(d, w.c.dep, w.key, (t) => t.replace(/^References: ?(.*)$/m, (_l, r: string) => `References: ${[r, w.c.top.slice(w.c.top.lastIndexOf('/') + 1)].filter(Boolean).join(' ')}`).replace(/^CA: .*\n/m, '')),
        /reference cycle \/\S+-top -> (\S+ -> )?\/\S+-dep -> \/\S+-top \(Nix refuses cycles/],
      ['CA that does not address the path', (d) => edit(d, w.c.dep, w.key, (t) => t.replace(/^CA: .*/m, `CA: fixed:r:${Hash.of('sha256', 'y').prefixed('nix32')}`)), /CA 'fixed:r:sha256:.*' gives .*, not .*-dep/],
    ];
    for (const [name, mutate, msg, which] of cases) {
      const dir = join(w.t.path, `case-${name.replace(/ /g, '-')}`);
      cpSync(which === 'zstd' ? goodZ : good, dir, { recursive: true });
      mutate(dir);
      const before = snapshot(dst);
      const err = await rejects(() => importFromCache(dst, openCache(dir), [w.c.top], { trustedKeys: [w.key.publicKey] }), msg);
      assert.not.match(err.message, /\n/, `${name}: one line`);
      assert.is(snapshot(dst), before, `${name}: store unchanged`);
      assert.equal(readdirSync(tmpDir), [], `${name}: no temp dirs left`);
    }
    // --no-check-sigs accepts the unsigned entry; everything else is still checked.
    const unsigned = join(w.t.path, 'case-unsigned');
    await importFromCache(dst, openCache(unsigned), [w.c.top], { checkSigs: false });
    assert.ok(dst.isValid(w.c.top));
  } finally {
    w.t.remove();
  }
});

test('import refuses a NAR that tries to escape the restore directory; nothing is written outside', async () => {
  const w = await world();
  try {
    const dir = join(w.t.path, 'evil');
    mkdirSync(join(dir, 'nar'), { recursive: true });
    writeFileSync(join(dir, 'nix-cache-info'), 'StoreDir: /nix/store\n');
    const nar = hostileNar('..');
    const narHash = Hash.of('sha256', nar);
    writeFileSync(join(dir, 'nar', `${narHash.nix32}.nar`), nar);
    const path = makeStorePath('output:out', Hash.of('sha256', 'evil'), 'evil');
    let ni = parseNarInfo(`StorePath: ${path}\nURL: nar/${narHash.nix32}.nar\nCompression: none\nNarHash: ${narHash.prefixed('nix32')}\nNarSize: ${nar.length}\nReferences: \n`, 'evil');
    ni = { ...ni, sigs: [signText(w.key, narInfoFingerprint(ni))] };
    writeFileSync(join(dir, `${parseStorePath(path).hashPart}.narinfo`), formatNarInfo(ni));
    const dst = new LocalStore({ root: join(w.t.path, 'dst') });
    const before = snapshot(dst);
    await rejects(() => importFromCache(dst, openCache(dir), [path], { trustedKeys: [w.key.publicKey] }), /refusing .*-evil .*invalid entry name '\.\.'/);
    assert.is(snapshot(dst), before);
    const varTmp = join(dst.root, 'nix', 'var', 'fetch-image');
    assert.not.ok(readdirSync(varTmp).some((f) => f.includes('pwned')));
    assert.equal(readdirSync(join(varTmp, 'tmp')), []);
  } finally {
    w.t.remove();
  }
});

test('bundles: round trip restores paths, references, deriver and re-proves content addresses', async () => {
  const w = await world();
  try {
    const file = join(w.t.path, 'closure.bundle');
    const written = await writeBundleFile(w.src, [w.c.top, w.c.flat], file);
    assert.is(written.length, 4);
    const dst = new LocalStore({ root: join(w.t.path, 'dst') });
    const r = await readBundle(dst, createReadStream(file), { where: file });
    assert.ok(r.every((x) => x.imported));
    assert.equal(infoSummary(dst), infoSummary(w.src));
    const again = await readBundle(dst, createReadStream(file));
    assert.ok(again.every((x) => !x.imported), 'valid paths are skipped');
  } finally {
    w.t.remove();
  }
});

test('bundles: truncated or hostile input is refused; complete earlier paths stay, the broken one leaves nothing', async () => {
  const w = await world();
  try {
    const file = join(w.t.path, 'b');
    await writeBundleFile(w.src, [w.c.dep], file);
    const full = readFileSync(file);
    const dst = new LocalStore({ root: join(w.t.path, 'dst') });
    const before = snapshot(dst);
    await rejects(() => readBundle(dst, Readable.from([full.subarray(0, full.length - 200_000)]), { where: 'b' }), /bundle b.*truncated/i);
    assert.is(snapshot(dst), before);
    await rejects(() => readBundle(dst, Readable.from([Buffer.concat([full, Buffer.from('junk')])]), { where: 'b' }), /unexpected bytes after the end marker/);
    assert.ok(dst.isValid(w.c.dep), 'the complete entry before the junk was imported');
    const dst2 = new LocalStore({ root: join(w.t.path, 'dst2') });
    const int = (n: number) => { const b = Buffer.alloc(8); b.writeUInt32LE(n); return b; };
    const evilPath = makeStorePath('output:out', Hash.of('sha256', 'e'), 'evil');
    const evil = Buffer.concat([int(1), hostileNar('..'), int(0x4558494e), encodeStr(evilPath), int(0), encodeStr(''), int(0), int(0)]);
    const before2 = snapshot(dst2);
    await rejects(() => readBundle(dst2, Readable.from([evil]), { where: 'evil' }), /bundle evil: entry 1 .*invalid entry name '\.\.'/);
    assert.is(snapshot(dst2), before2);
    await rejects(() => readBundle(dst2, Readable.from([Buffer.from('not a bundle at all')]), { where: 'x' }), /bundle x: (expected 1 or 0|.*truncated)/);
  } finally {
    w.t.remove();
  }
});

test('CLI: keygen, export, import, bundle to stdout piped into unbundle -, errors as one line', async () => {
  const w = await world();
  const cli = (args: string[], input?: Buffer) => run(process.execPath, [CLI_PATH, ...args], input ? { input } : {});
  try {
    const prefix = join(w.t.path, 'k');
    const kg = await cli(['mirror', 'keygen', 'cli-1', '--out', prefix]);
    assert.is(kg.code, 0, kg.stderr);
    assert.is(kg.stdout.toString().trim(), readFileSync(`${prefix}.public`, 'utf8'));
    assert.is(statSync(`${prefix}.secret`).mode & 0o777, 0o600);
    assert.is((await cli(['mirror', 'keygen', 'cli-1', '--out', prefix])).code, 1, 'no silent overwrite');
    const cache = join(w.t.path, 'cache');
    const ex = await cli(['--store', w.src.root, '--json', 'mirror', 'export', '--to', cache, '--sign-key', `${prefix}.secret`, w.c.top]);
    assert.is(ex.code, 0, ex.stderr);
    assert.is((JSON.parse(ex.stdout.toString()) as { paths: unknown[] }).paths.length, 3);
    const dst = join(w.t.path, 'dst');
    const bad = await cli(['--store', dst, 'mirror', 'import', '--from', cache, '--all']);
    assert.is(bad.code, 1);
    assert.match(bad.stderr, /^error: .*is unsigned|^error: .*signed only by cli-1/);
    assert.is(bad.stderr.trim().split('\n').length, 1);
    const ok = await cli(['--store', dst, 'mirror', 'import', '--from', `file://${cache}`, '--all', '--trusted-key', readFileSync(`${prefix}.public`, 'utf8')]);
    assert.is(ok.code, 0, ok.stderr);
    assert.ok(new LocalStore({ root: dst }).isValid(w.c.top));
    const bundle = await cli(['--store', w.src.root, 'mirror', 'bundle', '--to', '-', w.c.flat]);
    assert.is(bundle.code, 0, bundle.stderr);
    const un = await cli(['--store', join(w.t.path, 'dst2'), 'mirror', 'unbundle', '-'], bundle.stdout);
    assert.is(un.code, 0, un.stderr);
    assert.match(un.stdout.toString(), /imported .*-flat.bin/);
    const notPath = await cli(['--store', w.src.root, 'mirror', 'export', '--to', cache, 'ubuntu:latest']);
    assert.match(notPath.stderr, /no pulled image in the store matches 'ubuntu:latest'/);
  } finally {
    w.t.remove();
  }
});

test('config: file location from XDG_CONFIG_HOME, merged with env and flags; bad files named', () => {
  const t = tempDir();
  try {
    const env = { XDG_CONFIG_HOME: t.path, HOME: '/nonexistent' };
    assert.is(mirrorConfigPath(env), join(t.path, 'fetch-image', 'config.json'));
    assert.equal(loadMirrorConfig(env), { substituters: [], trustedPublicKeys: [], requireSigs: true });
    mkdirSync(join(t.path, 'fetch-image'));
    const k = formatPublicKey(generateKeyPair('a-1').publicKey);
    const k2 = formatPublicKey(generateKeyPair('b-1').publicKey);
    writeFileSync(mirrorConfigPath(env), JSON.stringify({ substituters: ['/mnt/cache'], trustedPublicKeys: [k] }));
    const cfg = loadMirrorConfig({ ...env, FETCH_IMAGE_SUBSTITUTERS: 'http://a http://b' }, { substituters: ['http://flag'], trustedPublicKeys: [k2] });
    assert.equal(cfg.substituters, ['http://flag', 'http://a', 'http://b', '/mnt/cache']);
    assert.equal(cfg.trustedPublicKeys, [k2, k]);
    writeFileSync(mirrorConfigPath(env), '{ nope');
    assert.throws(() => loadMirrorConfig(env), /config file .*config.json: /);
    writeFileSync(mirrorConfigPath(env), JSON.stringify({ trustedPublicKeys: ['broken'] }));
    assert.throws(() => loadMirrorConfig(env), /public key 'broken' \(.*config.json\) is not in the form/);
    writeFileSync(mirrorConfigPath(env), JSON.stringify({ substituters: 'x' }));
    assert.throws(() => loadMirrorConfig(env), /'substituters' in .*config\.json must be a list of strings, got a string/);
    writeFileSync(mirrorConfigPath(env), JSON.stringify({ substituter: ['/mnt/cache'] }));
    assert.throws(() => loadMirrorConfig(env), /unknown key 'substituter' in .*config\.json \(did you mean 'substituters'\?\)/);
  } finally {
    t.remove();
  }
});

test.run();
