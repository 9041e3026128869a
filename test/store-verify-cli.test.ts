// `store verify`, `--repair`, `store add` of damaged paths, roots and gc's byte counts, through
// the CLI bundle: a store is damaged in every way nix-store --verify knows, and repaired from a
// signed file:// cache exported before the damage and by re-running recorded recipes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, cpSync, mkdirSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hash } from '../lib/hash/index.js';
import { LocalStore, makeFixedOutputPath, type VerifyProblem } from '../lib/store/index.js';
import { startServer, fileHandler, testBytes } from './helpers/http-servers.js';
import { run } from './helpers/run.js';
import { CLI_PATH } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const env = { PATH: process.env.PATH, HOME: '/nonexistent', XDG_CONFIG_HOME: '/nonexistent', NIX_CURL_FLAGS: '--retry 0' };
const fi = (store: string, args: string[]) => run('node', [CLI_PATH, '--store', store, ...args], { env });

function writable(dir: string): void {
  chmodSync(dir, 0o755);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) writable(p);
    else if (e.isFile()) chmodSync(p, 0o644);
  }
}

async function addDir(store: string, work: string, name: string, content: string): Promise<string> {
  const d = join(work, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'f'), content);
  const r = await fi(store, ['store', 'add', d]);
  assert.is(r.code, 0, r.stderr);
  return r.stdout.toString().trim();
}

const kinds = (ps: VerifyProblem[]) => ps.map((p) => `${p.kind} ${p.path}`).sort();

test('verify reports each kind of damage on its own line (exit 3); --repair fixes from a cache and from derivers; --delete-invalid the rest', async () => {
  const t = tempDir();
  const body = testBytes(200_000, 7);
  const srv = await startServer(fileHandler({ data: body }));
  try {
    const root = join(t.path, 's');
    const work = join(t.path, 'w');
    const store = new LocalStore({ root });
    const missing = await addDir(root, work, 'missing', 'a');
    const truncated = await addDir(root, work, 'truncated', 'b');
    const adoptable = await addDir(root, work, 'adoptable', 'c');
    const wrongCa = await addDir(root, work, 'wrong-ca', 'd');
    const leaf = await addDir(root, work, 'leaf', 'e');
    const top = await store.addText('top', `uses ${leaf}\n`, [leaf]);
    const lost = await addDir(root, work, 'lost', 'f');
    const top2 = await store.addText('top2', `uses ${lost}\n`, [lost]);
    const h = Hash.of('sha256', body);
    const fetched = await fi(root, ['url', srv.url('/files/data.bin'), '--sha256', h.sri]);
    assert.is(fetched.code, 0, fetched.stderr);
    const flipped = fetched.stdout.toString().trim();
    assert.is(flipped, makeFixedOutputPath('flat', h, 'data.bin'));

    // A signed cache of what can come back from there (not `lost`, not the url fetch).
    const key = join(t.path, 'key');
    assert.is((await fi(root, ['mirror', 'keygen', 'test-1', '--out', key])).code, 0);
    const pub = readFileSync(`${key}.public`, 'utf8').trim();
    const cache = join(t.path, 'cache');
    const exp = await fi(root, ['mirror', 'export', '--to', cache, '--sign-key', `${key}.secret`, missing, truncated, wrongCa, leaf, top]);
    assert.is(exp.code, 0, exp.stderr);
    const clean = await fi(root, ['store', 'verify', '--check-contents']);
    assert.is(clean.code, 0, clean.stdout.toString() + clean.stderr);

    // The damage.
    rmSync(store.realPath(missing), { recursive: true, force: true });
    const rec = (p: string) => join(root, 'nix/var/fetch-image/db', `${p.slice(11, 43)}.json`);
    truncateSync(rec(truncated), 40);
    rmSync(rec(adoptable));
    const junk = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-junk';
    mkdirSync(store.realPath(junk));
    writeFileSync(join(store.realPath(junk), 'x'), 'nobody knows me');
    for (const p of [leaf, lost]) {
      rmSync(rec(p));
      rmSync(store.realPath(p), { recursive: true, force: true });
    }
    const wrongRecord = JSON.parse(readFileSync(rec(wrongCa), 'utf8')) as { ca: string };
    wrongRecord.ca = `fixed:r:${Hash.of('sha256', 'other').prefixed('nix32')}`;
    writeFileSync(rec(wrongCa), JSON.stringify(wrongRecord));
    const file = store.realPath(flipped);
    chmodSync(file, 0o644);
    const bytes = readFileSync(file);
    bytes[1000] ^= 1;
    writeFileSync(file, bytes);

    const quick = await fi(root, ['store', 'verify']);
    assert.is(quick.code, 3, quick.stderr);
    const lines = quick.stdout.toString().trim().split('\n');
    for (const [p, what] of [[missing, /content is missing/], [truncated, /metadata record .* is unreadable: it is not valid JSON \(truncated\?\)/],
      [adoptable, /no metadata record \(orphan/], [junk, /no metadata record \(orphan/], [top, new RegExp(`refers to ${leaf}, which is not valid`)],
      [top2, new RegExp(`refers to ${lost}, which is not valid`)]] as const) {
      assert.ok(lines.some((l) => l.startsWith(`${p}: `) && what.test(l)), `${p} ${what}: ${lines.join('\n')}`);
    }
    assert.match(lines.at(-1)!, /^checked \d+ paths: 6 problems$/);

    const full = await fi(root, ['--json', 'store', 'verify', '--check-contents']);
    assert.is(full.code, 3);
    const report = JSON.parse(full.stdout.toString()) as { problems: VerifyProblem[] };
    assert.equal(kinds(report.problems), [
      `ca-mismatch ${wrongCa}`, `invalid-reference ${top}`, `invalid-reference ${top2}`, `missing-content ${missing}`,
      `nar-mismatch ${flipped}`, `orphan ${adoptable}`, `orphan ${junk}`, `unreadable-record ${truncated}`,
    ].sort());

    // Repair: the cache, the url fetch's recipe (served again), the orphan's own content; junk and lost cannot be.
    const hits = srv.requests.length;
    const rep = await fi(root, ['store', 'verify', '--check-contents', '--repair', '--substituter', cache, '--trusted-key', pub]);
    assert.is(rep.code, 3, rep.stderr);
    const out = rep.stdout.toString();
    for (const p of [missing, truncated, wrongCa, top]) assert.match(out, new RegExp(`repaired ${p}: .*(binary cache|reference)`));
    assert.match(out, new RegExp(`repaired ${flipped}: rebuilt from its deriver`));
    assert.match(out, new RegExp(`repaired ${adoptable}: registered again`));
    assert.match(out, new RegExp(`cannot repair ${junk}: `));
    assert.match(out, new RegExp(`cannot repair ${top2}: its reference ${lost} cannot be repaired`));
    assert.match(out, /2 problems left\nhint: .*or add --delete-invalid/);
    assert.ok(srv.requests.length > hits, 'the url was fetched again');
    assert.ok(readFileSync(store.realPath(flipped)).equals(body));
    assert.ok(store.isValid(junk) === false && store.hasContent(junk), 'what cannot be repaired stays as it was without --delete-invalid');

    const del = await fi(root, ['--json', 'store', 'verify', '--repair', '--delete-invalid']);
    assert.is(del.code, 0, del.stdout.toString() + del.stderr);
    const deleted = (JSON.parse(del.stdout.toString()) as { repairs: { path: string; action: string }[] }).repairs.filter((r) => r.action === 'deleted').map((r) => r.path).sort();
    assert.equal(deleted, [junk, top2].sort());
    const after = await fi(root, ['store', 'verify', '--check-contents']);
    assert.is(after.code, 0, after.stdout.toString());
    assert.ok(store.isValid(top) && store.isValid(leaf) && store.isValid(missing) && store.isValid(truncated));
  } finally {
    await srv.close();
    t.remove();
  }
});

test('store add of a registered path whose content is damaged says so (exit 1) until --repair', async () => {
  const t = tempDir();
  try {
    const root = join(t.path, 's');
    const store = new LocalStore({ root });
    const src = join(t.path, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'original');
    const p = (await fi(root, ['store', 'add', src])).stdout.toString().trim();
    writable(store.realPath(p));
    writeFileSync(join(store.realPath(p), 'f'), 'flipped!');
    const again = await fi(root, ['store', 'add', src]);
    assert.is(again.code, 1);
    assert.match(again.stderr, new RegExp(`error: store path '${p}' is registered but damaged: NAR hash mismatch.*store add --repair.*store verify --check-contents --repair`));
    const fixed = await fi(root, ['store', 'add', '--repair', src]);
    assert.is(fixed.code, 0, fixed.stderr);
    assert.is(readFileSync(join(store.realPath(p), 'f'), 'utf8'), 'original');
    rmSync(store.realPath(p), { recursive: true, force: true });
    const gone = await fi(root, ['store', 'add', src]);
    assert.is(gone.code, 1);
    assert.match(gone.stderr, /its content is missing/);
    assert.is((await fi(root, ['store', 'add', '--repair', src])).code, 0);
    assert.is((await fi(root, ['store', 'verify', '--check-contents'])).code, 0);
  } finally {
    t.remove();
  }
});

test('a pinned fetch and a mirror import of a registered path whose content is gone make it whole again', async () => {
  const t = tempDir();
  const body = Buffer.from('fetched\n');
  const srv = await startServer(fileHandler({ data: body }));
  try {
    const root = join(t.path, 's');
    const store = new LocalStore({ root });
    const h = Hash.of('sha256', body);
    const p = (await fi(root, ['url', srv.url('/f.txt'), '--sha256', h.sri])).stdout.toString().trim();
    const cache = join(t.path, 'cache');
    assert.is((await fi(root, ['mirror', 'export', '--to', cache, p])).code, 0);
    rmSync(store.realPath(p), { force: true });
    const hits = srv.requests.length;
    const again = await fi(root, ['url', srv.url('/f.txt'), '--sha256', h.sri]);
    assert.is(again.code, 0, again.stderr);
    assert.is(srv.requests.length, hits + 1, 'fetched again: a record without content is not a valid path');
    assert.ok(readFileSync(store.realPath(p)).equals(body));
    rmSync(store.realPath(p), { force: true });
    const imp = await fi(root, ['mirror', 'import', '--from', cache, '--no-check-sigs', p]);
    assert.is(imp.code, 0, imp.stderr);
    assert.match(imp.stdout.toString(), `imported ${p}`);
    assert.is((await fi(root, ['store', 'verify', '--check-contents'])).code, 0);
  } finally {
    await srv.close();
    t.remove();
  }
});

test('roots: add-root refuses to repoint without --force; roots lists and marks dangling; remove-root; delete names the root; url --add-root survives gc', async () => {
  const t = tempDir();
  const body = Buffer.from('keep me\n');
  const srv = await startServer(fileHandler({ data: body }));
  try {
    const root = join(t.path, 's');
    const work = join(t.path, 'w');
    const a = await addDir(root, work, 'a', 'a');
    const b = await addDir(root, work, 'b', 'b');
    assert.is((await fi(root, ['store', 'add-root', a, 'prod'])).code, 0);
    assert.is((await fi(root, ['store', 'add-root', a, 'prod'])).code, 0, 'the same path again is fine');
    const refused = await fi(root, ['store', 'add-root', b, 'prod']);
    assert.is(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`GC root 'prod' already points to ${a}; use --force`));
    const forced = await fi(root, ['store', 'add-root', '--force', b, 'prod']);
    assert.is(forced.code, 0, forced.stderr);
    assert.match(forced.stdout.toString(), new RegExp(`-> ${b} \\(was ${a}\\)`));
    assert.is((await fi(root, ['store', 'add-root', a, 'old'])).code, 0);
    const del = await fi(root, ['store', 'delete', b]);
    assert.is(del.code, 1);
    assert.match(del.stderr, /protected by GC root 'prod'/);
    const store = new LocalStore({ root });
    rmSync(store.realPath(a), { recursive: true, force: true }); // 'old' dangles now
    const roots = await fi(root, ['store', 'roots']);
    assert.equal(roots.stdout.toString().trim().split('\n'), [`old -> ${store.realPath(a)} (dangling: not a valid path)`, `prod -> ${b}`]);
    const json = JSON.parse((await fi(root, ['--json', 'store', 'roots'])).stdout.toString()) as { name: string; dangling: boolean }[];
    assert.equal(json.map((r) => [r.name, r.dangling]), [['old', true], ['prod', false]]);
    assert.is((await fi(root, ['store', 'remove-root', 'prod'])).code, 0);
    const none = await fi(root, ['store', 'remove-root', 'prod']);
    assert.is(none.code, 1);
    assert.match(none.stderr, /no GC root named 'prod'/);

    const h = Hash.of('sha256', body);
    const got = await fi(root, ['url', srv.url('/keep.txt'), '--sha256', h.sri, '--add-root', 'keep']);
    assert.is(got.code, 0, got.stderr);
    const kept = got.stdout.toString().trim();
    assert.match(got.stderr, new RegExp(`GC root 'keep' -> ${kept}`));
    const gc = await fi(root, ['store', 'gc']);
    assert.is(gc.code, 0, gc.stderr);
    assert.ok(store.isValid(kept), 'the rooted fetch survives gc');
    assert.not.ok(store.isValid(b), 'the unrooted path does not');
  } finally {
    await srv.close();
    t.remove();
  }
});

test('gc reports the bytes it frees: dead paths, orphans and temp entries of dead processes', async () => {
  const t = tempDir();
  try {
    const root = join(t.path, 's');
    const work = join(t.path, 'w');
    const dead = await addDir(root, work, 'dead', 'x'.repeat(5000));
    const store = new LocalStore({ root });
    const orphan = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-orphan';
    mkdirSync(store.realPath(orphan));
    writeFileSync(join(store.realPath(orphan), 'o'), Buffer.alloc(7000));
    // A temp dir of a process that is gone (pid far above pid_max's default).
    const temp = join(root, 'nix/var/fetch-image/tmp/build-4999999-abcdef');
    mkdirSync(join(temp, 'out'), { recursive: true });
    writeFileSync(join(temp, 'out', 'partial'), Buffer.alloc(11000));
    cpSync(join(work, 'dead'), join(temp, 'copy'), { recursive: true });
    const dry = JSON.parse((await fi(root, ['--json', 'store', 'gc', '--dry-run'])).stdout.toString()) as Record<string, unknown>;
    assert.equal(dry.dead, [dead]);
    assert.equal(dry.orphans, [orphan]);
    assert.equal(dry.tempDirs, [temp]);
    assert.equal([dry.deadBytes, dry.orphanBytes, dry.tempBytes, dry.bytesFreed], [5000, 7000, 16000, 28000]);
    assert.ok(store.hasContent(orphan), 'a dry run deletes nothing');
    const gc = await fi(root, ['store', 'gc']);
    assert.is(gc.code, 0, gc.stderr);
    assert.match(gc.stdout.toString(), /freed 28000 bytes \(27\.3 KiB\): 1 dead path \(5000 bytes \(4\.9 KiB\)\), 1 orphan \(7000 bytes \(6\.8 KiB\)\), 1 temp entry of dead processes \(16000 bytes \(15\.6 KiB\)\)/);
    assert.equal(readdirSync(join(root, 'nix/store')), []);
    assert.equal(readdirSync(join(root, 'nix/var/fetch-image/tmp')), []);
  } finally {
    t.remove();
  }
});

test.run();
