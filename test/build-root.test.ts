import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeImage, pushImage } from '../store-fixtures/images/index.js';
import { CLI_PATH } from './helpers/cli.js';
import { startServer } from './helpers/http-servers.js';
import { havePeer } from './helpers/peers.js';
import { podmanVfs } from './helpers/podman.js';
import { startRegistry } from './helpers/registry.js';
import { run, type RunResult } from './helpers/run.js';
import { busyboxRoot } from './helpers/sandbox-trees.js';
import { shadowBaseEntries } from './helpers/shadow-base.js';
import { tempDir } from './helpers/tmp.js';

// runAsRoot through the CLI bundle, on the real kernel (namespace sandbox) and in a real QEMU
// guest (vm sandbox, TCG here): the seed's shadow-basic example, loaded and mounted by podman.

function ready(): boolean {
  const peers = ['docker-registry', 'podman', 'unshare', 'python3', 'busybox'];
  if (process.getuid?.() !== 0) {
    if (process.env.FETCH_IMAGE_REQUIRE_PEERS === '1') throw new Error('the runAsRoot build tests need root (FETCH_IMAGE_REQUIRE_PEERS=1)');
    console.warn('  (not root: the runAsRoot build tests pass vacuously here; CI runs them as root)');
    return false;
  }
  return peers.every(havePeer);
}

const env = { PATH: process.env.PATH, HOME: process.env.HOME };
const fi = (store: string, args: string[], cwd?: string): Promise<RunResult> =>
  run('node', [CLI_PATH, '--store', store, ...args], { env, ...(cwd ? { cwd } : {}) });
const ok = async (store: string, args: string[]): Promise<string> => {
  const r = await fi(store, args);
  assert.is(r.code, 0, `fetch-image ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.toString().trim();
};
interface BuildJson { storePath: string; path: string; layerDiffId: string }
const build = async (store: string, spec: string, extra: string[] = []): Promise<BuildJson> =>
  JSON.parse(await ok(store, ['--json', 'build', spec, ...extra])) as BuildJson;
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const writeSpec = (file: string, spec: unknown) => { writeFileSync(file, JSON.stringify(spec, null, 2)); return file; };

/** Names (and `type uid/gid`) of the new (last) layer of a docker-archive. */
function newLayer(archive: string, dir: string): { names: string[]; long: string } {
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-C', dir, '-xf', archive]);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
  const layer = join(dir, manifest[0]!.Layers.at(-1)!);
  const names = execFileSync('tar', ['-tf', layer]).toString().trim().split('\n');
  const long = execFileSync('tar', ['--numeric-owner', '-tvf', layer]).toString();
  return { names, long };
}

const t = tempDir('fi-build-root-');
let pinCache: Record<string, unknown> | undefined;
let regStop: (() => Promise<void>) | undefined;

/** The Debian-like base (groupadd, useradd, busybox sh), pushed to a local registry and pinned with `fetch-image pull --json`. */
async function debianLikePin(): Promise<Record<string, unknown>> {
  if (pinCache) return pinCache;
  const reg = await startRegistry();
  regStop = () => reg.stop();
  const layout = await makeImage(join(t.path, 'base-layout'), { layers: [{ entries: shadowBaseEntries() }], runConfig: { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] } }, 'v1');
  await pushImage(layout.dir, reg.port, 'library/debianish', '12', { sourceTag: 'v1' });
  const pin = JSON.parse(await ok(join(t.path, 'pins'), ['--json', 'pull', '--tls-verify=false', `${reg.host}/library/debianish:12`])) as Record<string, unknown>;
  pinCache = { ...pin, tlsVerify: false };
  return pinCache;
}

const SHADOW_BASIC = '#!/bin/sh\n${shadowSetup}\ngroupadd -r redis\nuseradd -r -g redis redis\nmkdir /data\nchown redis:redis /data\n';

test('shadow-basic (the seed\'s example): podman sees redis and /data owned by it; the layer holds only the changes; two builds and both sandboxes give the same bytes', async () => {
  if (!ready()) return;
  const pin = await debianLikePin();
  const spec = writeSpec(join(t.path, 'shadow-basic.json'), { name: 'shadow-basic', fromImage: pin, runAsRoot: SHADOW_BASIC, compressor: 'none' });
  const a = await build(join(t.path, 's1'), spec, ['--sandbox', 'namespace']);
  const pm = podmanVfs(join(t.path, 'pm1'));
  try {
    await pm.load(a.path);
    const root = await pm.mount('shadow-basic:' + a.storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32));
    const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
    const line = passwd.split('\n').find((l) => l.startsWith('redis:'));
    assert.ok(line, passwd);
    const [, , uid, gid] = line!.split(':');
    assert.match(readFileSync(join(root, 'etc/group'), 'utf8'), new RegExp(`^redis:x:${gid}:`, 'm'));
    const data = statSync(join(root, 'data'));
    assert.ok(data.isDirectory());
    assert.is(`${data.uid}:${data.gid}`, `${uid}:${gid}`);
    assert.ok(existsSync(join(root, 'usr/sbin/useradd')), 'base files still there');
  } finally {
    await pm.unmountAll();
  }
  const layer = newLayer(a.path, join(t.path, 'x1'));
  // Only what the script changed: the account files (and the tools' `-` backups), /data.
  const allowed = /^(etc\/|etc\/(passwd|group|shadow|gshadow)-?|etc\/\.pwd\.lock|data\/|etc\/pam\.d\/|etc\/pam\.d\/other)$/;
  assert.ok(layer.names.every((n) => allowed.test(n)), layer.names.join(' '));
  for (const n of ['etc/passwd', 'etc/group', 'etc/shadow', 'etc/gshadow', 'data/']) assert.ok(layer.names.includes(n), `${n} in ${layer.names.join(' ')}`);
  assert.not.ok(layer.names.some((n) => n.startsWith('usr/') || n.startsWith('bin/')), 'nothing only read');
  // Two builds in two stores: the same bytes.
  const b = await build(join(t.path, 's2'), spec, ['--sandbox', 'namespace']);
  assert.is(b.storePath, a.storePath);
  assert.is(sha256(b.path), sha256(a.path));
  // The vm sandbox (TCG here): the same path and the same bytes.
  const started = Date.now();
  const v = await build(join(t.path, 's3'), spec, ['--sandbox', 'vm']);
  console.log(`  vm (TCG) build of shadow-basic: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.is(v.storePath, a.storePath);
  assert.is(sha256(v.path), sha256(a.path), 'namespace and vm give byte-identical archives');
});

test('deleting a base file (whiteout) and rm -rf + mkdir of a base dir (opaque): podman no longer sees them', async () => {
  if (!ready()) return;
  const pin = await debianLikePin();
  const spec = writeSpec(join(t.path, 'delete.json'), {
    name: 'delete', fromImage: pin, compressor: 'none',
    runAsRoot: '#!/bin/sh\nrm /etc/motd\nrm -rf /srv/old && mkdir /srv/old\necho n > /srv/old/new\n',
  });
  const r = await build(join(t.path, 's1'), spec);
  const layer = newLayer(r.path, join(t.path, 'x2'));
  assert.ok(layer.names.includes('etc/.wh.motd'), layer.names.join(' '));
  assert.ok(layer.names.includes('srv/old/.wh..wh..opq'), layer.names.join(' '));
  const pm = podmanVfs(join(t.path, 'pm2'));
  try {
    await pm.load(r.path);
    const root = await pm.mount(`delete:${r.storePath.slice(11, 43)}`);
    assert.not.ok(existsSync(join(root, 'etc/motd')));
    assert.equal(readdirSync(join(root, 'srv/old')), ['new']);
    assert.ok(existsSync(join(root, 'srv/keep/c')));
  } finally {
    await pm.unmountAll();
  }
  // The base's layer trees are cached beside the store, reused by the next build, and gc-able.
  const layers = join(t.path, 's1/nix/var/fetch-image/layers');
  const trees = readdirSync(layers).filter((n) => /^[0-9a-f]{64}$/.test(n));
  assert.is(trees.length, 1, 'one tree per base layer');
  const made = statSync(join(layers, trees[0]!)).ino;
  const again = writeSpec(join(t.path, 'again.json'), { name: 'again', fromImage: pin, compressor: 'none', runAsRoot: '#!/bin/sh\ntouch /again\n' });
  await build(join(t.path, 's1'), again);
  assert.is(statSync(join(layers, trees[0]!)).ino, made, 'reused, not unpacked again');
  await ok(join(t.path, 's1'), ['store', 'gc']);
  assert.equal(readdirSync(layers).filter((n) => !n.startsWith('.')), [], 'no valid archive holds the layer any more');
});

test('a failing script: exit code and last lines shown, store unchanged; --keep-failed keeps the upper dir; network and /nix/store writes fail', async () => {
  if (!ready()) return;
  const pin = await debianLikePin();
  const store = join(t.path, 's2'); // the first test's: the base is valid there
  const before = await ok(store, ['store', 'ls']);
  const fail = writeSpec(join(t.path, 'fail.json'), {
    name: 'fail', fromImage: pin, runAsRoot: '#!/bin/sh\nfor i in $(seq 1 30); do echo line $i; done\ntouch /made-it\nexit 3\n',
  });
  const r = await fi(store, ['build', fail, '--keep-failed']);
  assert.is(r.code, 1, r.stderr);
  const err = r.stderr.toString();
  assert.match(err, /runAsRoot failed with exit code 3 \(\w+ sandbox\); its last 20 lines of output:/);
  assert.match(err, /line 30/);
  assert.not.match(err, /line 10\n/);
  const kept = /the upper dir \(the script's changes\) is kept at '([^']+)'/.exec(err)?.[1];
  assert.ok(kept && existsSync(join(kept, 'made-it')), err);
  assert.is(await ok(store, ['store', 'ls']), before, 'nothing registered');

  const http = await startServer((_q, res) => res.end('reachable\n'));
  try {
    // busybox-static's wget crashes (no NSS); nc speaks enough HTTP.
    const fetch = `#!/bin/sh\nprintf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 127.0.0.1 ${http.port} > /got\ngrep reachable /got\n`;
    const net = writeSpec(join(t.path, 'net.json'), { name: 'net', fromImage: pin, runAsRoot: fetch });
    const rn = await fi(store, ['build', net]);
    assert.is(rn.code, 1, 'no network without "network": true');
    assert.match(rn.stderr.toString(), /runAsRoot failed with exit code/);
    const netOk = writeSpec(join(t.path, 'net-ok.json'), { name: 'net', fromImage: pin, network: true, compressor: 'none', runAsRoot: fetch });
    const rok = await fi(store, ['--json', 'build', netOk]);
    assert.is(rok.code, 0, rok.stderr);
    assert.match(rok.stderr.toString(), /network: true .*impure/);
    const built = JSON.parse(rok.stdout.toString()) as BuildJson;
    assert.ok(newLayer(built.path, join(t.path, 'x3')).names.includes('got'));
  } finally {
    await http.close();
  }

  const hung = writeSpec(join(t.path, 'hung.json'), { name: 'hung', fromImage: pin, runAsRoot: '#!/bin/sh\nsleep 60\n' });
  const started = Date.now();
  const rh = await fi(store, ['build', hung, '--timeout', '2', '--sandbox', 'namespace']);
  assert.is(rh.code, 1);
  assert.match(rh.stderr.toString(), /did not finish within 2 s and was killed; raise --timeout/);
  assert.ok(Date.now() - started < 30_000, 'stopped at the timeout');

  const writeStore = writeSpec(join(t.path, 'store-write.json'), { name: 'sw', fromImage: pin, runAsRoot: '#!/bin/sh\necho x > /nix/store/evil\n' });
  const rs = await fi(store, ['build', writeStore]);
  assert.is(rs.code, 1);
  assert.match(rs.stderr.toString(), /it tried to write into \/nix\/store, which is read-only in the root stage/);
});

test('an empty base (fromImage null): busybox-static from copyToRoot is the image\'s shell; ${shadowSetup} gives root\'s account files', async () => {
  if (!ready()) return;
  const bb = join(t.path, 'bb');
  busyboxRoot(bb);
  const spec = writeSpec(join(t.path, 'empty.json'), {
    name: 'empty-base', fromImage: null, copyToRoot: ['./bb'], compressor: 'none',
    runAsRoot: '#!/bin/sh\n${shadowSetup}\nmkdir -p /data\nrm /bin/vi\n',
  });
  const r = await build(join(t.path, 's1'), spec);
  const layer = newLayer(r.path, join(t.path, 'x4'));
  assert.ok(layer.names.includes('etc/passwd') && layer.names.includes('bin/busybox') && layer.names.includes('data/'), layer.names.join(' '));
  assert.not.ok(layer.names.includes('bin/vi'), 'removed from the copyToRoot tree');
  assert.not.ok(layer.names.includes('bin/.wh.vi'), 'no whiteout for a file no base has');
  const pm = podmanVfs(join(t.path, 'pm4'));
  try {
    await pm.load(r.path);
    const root = await pm.mount(`empty-base:${r.storePath.slice(11, 43)}`);
    assert.match(readFileSync(join(root, 'etc/passwd'), 'utf8'), /^root:x:0:0::\/root:\/bin\/sh$/m);
    assert.ok(lstatSync(join(root, 'bin/sh')).isSymbolicLink());
  } finally {
    await pm.unmountAll();
  }
  // ${shadowSetup} in extraCommands (no runAsRoot): the layer directory's ./etc, with POSIX tests for sh.
  const xc = writeSpec(join(t.path, 'xc.json'), { name: 'xc', copyToRoot: ['./bb'], compressor: 'none', extraCommands: '${shadowSetup}' });
  const rx = await build(join(t.path, 's1'), xc);
  const lx = newLayer(rx.path, join(t.path, 'x5'));
  for (const n of ['etc/passwd', 'etc/shadow', 'etc/group', 'etc/gshadow', 'etc/pam.d/other', 'etc/login.defs']) assert.ok(lx.names.includes(n), `${n} in ${lx.names.join(' ')}`);
});

test.after(async () => {
  await regStop?.();
  t.remove();
});

test.run();
