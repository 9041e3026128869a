// A pin is checked against content, not against a record. Forged copies of pinned paths — other
// bytes under the pinned store path, in a bundle or in an unsigned cache entry without CA — are
// imported (marked unverified), then refused at the pin (exit 102, nothing answered), reported by
// `store verify --check-contents`, and repaired by re-running the recipe.
//
// How the forgeries are made:
// - With real Nix: `nix-store --store local?root=R --add-fixed sha256 pinned.bin` of other bytes
//   gives another path P' of the same name; `nix-store --export P'` writes the stream, and P' is
//   replaced by the pinned path P in it (same length: same name, 32-character hash part). Nix made
//   every byte of the NAR and the framing; nothing in the stream carries a content address.
// - With our own writer: the forged bytes registered under P in a scratch store, with the real
//   recipe as deriver, and `mirror bundle P RECIPE` (or `mirror export`, unsigned, for a cache).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetchUrlRecipe } from '../lib/builders/index.js';
import { Hash } from '../lib/hash/index.js';
import { recipeFileName, serializeRecipe } from '../lib/recipe/index.js';
import { LocalStore, makeFixedOutputPath } from '../lib/store/index.js';
import { startBadRegistry } from '../store-fixtures/bad-registry/index.js';
import { makeImage } from '../store-fixtures/images/index.js';
import { fileHandler, startServer } from './helpers/http-servers.js';
import { havePeer } from './helpers/peers.js';
import { run, runOk } from './helpers/run.js';
import { CLI_PATH } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const env = { PATH: process.env.PATH, HOME: '/nonexistent', XDG_CONFIG_HOME: '/nonexistent', NIX_CURL_FLAGS: '--retry 0' };
const fi = (store: string, args: string[]) => run('node', [CLI_PATH, '--store', store, ...args], { env });

/** Registers `bytes` under `storePath` in a scratch store: a forger's store, whose records say what it likes. */
async function forgeInStore(root: string, storePath: string, bytes: Buffer, deriver?: string): Promise<LocalStore> {
  const store = new LocalStore({ root });
  const tmp = store.makeTempDir('forge');
  writeFileSync(join(tmp, 'out'), bytes);
  const lock = await store.lockPath(storePath);
  try {
    await store.register(storePath, join(tmp, 'out'), deriver ? { deriver } : {});
  } finally {
    lock.release();
  }
  return store;
}

function assertRefusedPin(r: { code: number | null; stderr: string; stdout: Buffer }, path: string): void {
  assert.is(r.code, 102, r.stderr);
  assert.is(r.stdout.toString(), '', 'the pin is not answered');
  assert.match(r.stderr, `error: store path '${path}' is invalid: its content does not match the pinned hash`);
  assert.match(r.stderr, "store verify --check-contents --repair");
}

test('url pin: a bundle forged with real Nix is refused at the pin, then reported by verify and repaired', async () => {
  if (!havePeer('nix-store')) return;
  const t = tempDir();
  const real = Buffer.from('the real bytes\n'.repeat(100));
  const srv = await startServer(fileHandler({ data: real }));
  try {
    const h = Hash.of('sha256', real);
    const pinned = makeFixedOutputPath('flat', h, 'pinned.bin');
    const forgedFile = join(t.path, 'pinned.bin');
    writeFileSync(forgedFile, 'other bytes\n');
    const nixStore = `local?root=${join(t.path, 'nix')}`;
    const other = (await runOk('nix-store', ['--store', nixStore, '--add-fixed', 'sha256', forgedFile])).toString().trim();
    const stream = await runOk('nix-store', ['--store', nixStore, '--export', other]);
    assert.is(other.length, pinned.length);
    const at = stream.indexOf(other);
    assert.ok(at > 0 && stream.indexOf(other, at + 1) < 0, 'the path appears once, in the trailer');
    stream.write(pinned, at);
    const bundle = join(t.path, 'forged.closure');
    writeFileSync(bundle, stream);

    const root = join(t.path, 's');
    const imp = await fi(root, ['mirror', 'unbundle', bundle]);
    assert.is(imp.code, 0, imp.stderr);
    assert.match(imp.stdout.toString(), `imported ${pinned} (unverified: no content address`);
    const before = await fi(root, ['store', 'verify', '--check-contents']);
    assert.match(before.stdout.toString(), `unverified ${pinned}: no content address and no stored recipe`);

    const pin = await fi(root, ['url', srv.url('/pinned.bin'), '--sha256', h.sri]);
    assertRefusedPin(pin, pinned);
    assert.is(srv.requests.length, 0);
    const again = await fi(root, ['url', srv.url('/pinned.bin'), '--sha256', h.sri]);
    assert.is(again.code, 102, 'refused every time, not only once');
    const handOn = await fi(root, ['mirror', 'bundle', '--to', join(t.path, 'out.closure'), pinned]);
    assert.is(handOn.code, 1, 'a path known to be forged is not handed on');
    assert.match(handOn.stderr, `store path '${pinned}' is invalid`);

    const verify = await fi(root, ['store', 'verify', '--check-contents']);
    assert.is(verify.code, 3);
    assert.match(verify.stdout.toString(), new RegExp(`${pinned}: content does not match its content address fixed:sha256:${h.nix32}`));
    const repair = await fi(root, ['store', 'verify', '--check-contents', '--repair']);
    assert.is(repair.code, 0, repair.stdout.toString() + repair.stderr);
    assert.match(repair.stdout.toString(), `repaired ${pinned}: rebuilt from its deriver`);
    const ok = await fi(root, ['url', srv.url('/pinned.bin'), '--sha256', h.sri]);
    assert.is(ok.code, 0, ok.stderr);
    assert.is(ok.stdout.toString().trim(), pinned);
    assert.ok(readFileSync(new LocalStore({ root }).realPath(pinned)).equals(real));
  } finally {
    await srv.close();
    t.remove();
  }
});

test('url pin: a bundle forged with our writer, carrying the real recipe, is caught by verify before any pin', async () => {
  const t = tempDir();
  const real = Buffer.from('real\n');
  const srv = await startServer(fileHandler({ data: real }));
  try {
    const h = Hash.of('sha256', real);
    const recipe = fetchUrlRecipe({ url: srv.url('/pinned.bin'), hash: h });
    const forger = join(t.path, 'forger');
    const recipePath = await new LocalStore({ root: forger }).addText(recipeFileName(recipe), serializeRecipe(recipe));
    const pinned = makeFixedOutputPath('flat', h, 'pinned.bin');
    await forgeInStore(forger, pinned, Buffer.from('fake\n'), recipePath);
    const bundle = join(t.path, 'forged.closure');
    assert.is((await fi(forger, ['mirror', 'bundle', '--to', bundle, pinned, recipePath])).code, 0);

    const root = join(t.path, 's');
    const imp = await fi(root, ['mirror', 'unbundle', bundle]);
    assert.match(imp.stdout.toString(), `imported ${pinned} (unverified`);
    assert.match(imp.stdout.toString(), new RegExp(`imported ${recipePath}\n`), 'the recipe proves its own text address');
    const verify = await fi(root, ['store', 'verify', '--check-contents']);
    assert.is(verify.code, 3);
    assert.match(verify.stdout.toString(), `${pinned}: content does not match the content address its deriver declares fixed:sha256:${h.nix32}`);
    assertRefusedPin(await fi(root, ['url', srv.url('/pinned.bin'), '--sha256', h.sri]), pinned);
  } finally {
    await srv.close();
    t.remove();
  }
});

test('image pull pin: an unsigned, CA-less cache entry with other bytes is refused at the pin, reported by verify, repaired from the registry', async () => {
  const t = tempDir();
  const reg = await startBadRegistry();
  try {
    const layout = await makeImage(join(t.path, 'layout'), { layers: [{ entries: [{ type: 'file', path: 'etc/motd', content: 'pinned\n' }] }] }, 'v1');
    const blobs = join(layout.dir, 'blobs', 'sha256');
    for (const hex of readdirSync(blobs)) reg.addBlob(readFileSync(join(blobs, hex)));
    reg.addManifest('team/app', layout.images[0]!.manifest, layout.images[0]!.mediaType, ['v1']);
    const ref = `${reg.host}/team/app:v1`;
    const a = join(t.path, 'a');
    const pre = await fi(a, ['--json', ref, '--tls-verify=false', '--add-root', 'app']);
    assert.is(pre.code, 0, pre.stderr);
    const pin = JSON.parse(pre.stdout.toString()) as { sha256: string; storePath: string; path: string };
    assert.is((await fi(a, ['store', 'gc'])).code, 0);
    assert.ok(new LocalStore({ root: a }).isValid(pin.storePath), 'pull --add-root keeps the image from gc');

    const forger = join(t.path, 'forger');
    await forgeInStore(forger, pin.storePath, Buffer.from('not an image archive'));
    const cache = join(t.path, 'cache');
    assert.is((await fi(forger, ['mirror', 'export', '--to', cache, pin.storePath])).code, 0);
    const narinfo = readdirSync(cache).find((f) => f.endsWith('.narinfo'))!;
    const text = readFileSync(join(cache, narinfo), 'utf8');
    assert.not.match(text, /^(CA|Sig):/m, 'unsigned and without a content address');

    const b = join(t.path, 'b');
    const imp = await fi(b, ['mirror', 'import', '--from', cache, '--no-check-sigs', pin.storePath]);
    assert.is(imp.code, 0, imp.stderr);
    assert.match(imp.stdout.toString(), `imported ${pin.storePath} (unverified`);
    assertRefusedPin(await fi(b, [ref, '--tls-verify=false', '--sha256', pin.sha256]), pin.storePath);
    const verify = await fi(b, ['store', 'verify', '--check-contents']);
    assert.is(verify.code, 3);
    assert.match(verify.stdout.toString(), `${pin.storePath}: content does not match its content address fixed:sha256:`);
    const repair = await fi(b, ['store', 'verify', '--check-contents', '--repair']);
    assert.is(repair.code, 0, repair.stdout.toString() + repair.stderr);
    const ok = await fi(b, [ref, '--tls-verify=false', '--sha256', pin.sha256]);
    assert.is(ok.code, 0, ok.stderr);
    assert.ok(readFileSync(new LocalStore({ root: b }).realPath(pin.storePath)).equals(readFileSync(pin.path)), 'the real archive now');
  } finally {
    await reg.stop();
    t.remove();
  }
});

test('a pin hashes a path registered without a verified content address once, and records it', async () => {
  const t = tempDir();
  const real = Buffer.from('genuine\n');
  const srv = await startServer(fileHandler({ data: real }));
  try {
    const h = Hash.of('sha256', real);
    const pinned = makeFixedOutputPath('flat', h, 'pinned.bin');
    const forger = join(t.path, 'forger');
    await forgeInStore(forger, pinned, real); // the right bytes, but nothing proved it on import
    const bundle = join(t.path, 'b.closure');
    assert.is((await fi(forger, ['mirror', 'bundle', '--to', bundle, pinned])).code, 0);
    const root = join(t.path, 's');
    mkdirSync(root);
    const imp = await fi(root, ['--json', 'mirror', 'unbundle', bundle]);
    assert.equal((JSON.parse(imp.stdout.toString()) as { paths: { verified: boolean }[] }).paths.map((p) => p.verified), [true], 'its name and content prove its address on import');
    const store = new LocalStore({ root });
    store.updateInfo(pinned, { caVerified: false }); // as a store written before caVerified existed
    const pin = await fi(root, ['url', srv.url('/pinned.bin'), '--sha256', h.sri]);
    assert.is(pin.code, 0, pin.stderr);
    assert.is(srv.requests.length, 0, 'answered from the store after hashing it');
    assert.is(store.requireInfo(pinned).caVerified, true);
  } finally {
    await srv.close();
    t.remove();
  }
});

test.run();
