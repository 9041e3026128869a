// `fetch-image build` end to end through the shipped CLI: real podman loads and mounts the
// images, skopeo and umoci read them, bytes are compared across stores, directories, umasks and
// clocks, and bad specs fail with one line naming the file and the key.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { makeImage, pushImage } from '../store-fixtures/images/index.js';
import { CLI_PATH } from './helpers/cli.js';
import { havePeer } from './helpers/peers.js';
import { startRegistry } from './helpers/registry.js';
import { run, runOk, type RunResult } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';

const env = { PATH: process.env.PATH, HOME: process.env.HOME };
const fi = (store: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; umask?: string } = {}): Promise<RunResult> => {
  const cmd = `umask ${opts.umask ?? '022'} && exec node ${CLI_PATH} --store "$0" "$@"`;
  return run('sh', ['-c', cmd, store, ...args], { env: { ...env, ...opts.env }, ...(opts.cwd ? { cwd: opts.cwd } : {}) });
};
const ok = async (store: string, args: string[], opts: Parameters<typeof fi>[2] = {}): Promise<string> => {
  const r = await fi(store, args, opts);
  assert.is(r.code, 0, `fetch-image ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.toString().trim();
};
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface BuildJson {
  storePath: string; path: string; imageName: string; imageTag: string; layerDiffId: string; configDigest: string;
  added: string[]; skipped: string[]; closureSize: number; source: string;
}
const buildJson = async (store: string, spec: string, extra: string[] = [], opts: Parameters<typeof fi>[2] = {}): Promise<BuildJson> =>
  JSON.parse(await ok(store, ['--json', 'build', spec, ...extra], opts)) as BuildJson;

/** podman with its own root (vfs driver, as root in this sandbox), for load, mount and inspect. */
function podman(dir: string) {
  const base = ['--storage-driver', 'vfs', '--root', join(dir, 'proot'), '--runroot', join(dir, 'prun'), '--events-backend', 'none', '--cgroup-manager', 'cgroupfs'];
  return {
    load: async (archive: string) => (await runOk('podman', [...base, 'load', '-q', '-i', archive])).toString(),
    mount: async (image: string) => (await runOk('podman', [...base, 'image', 'mount', image])).toString().trim(),
    inspect: async (image: string) => (JSON.parse((await runOk('podman', [...base, 'image', 'inspect', image])).toString()) as
      { Config: { Cmd?: string[]; Env?: string[]; User?: string; WorkingDir?: string }; RootFS: { Layers: string[] } }[])[0]!,
    unmountAll: () => run('podman', [...base, 'image', 'unmount', '--all']),
  };
}

/** A directory tree from a {path: content} map (a trailing '/' makes a directory; mode by '!x'). */
function writeTree(root: string, files: Record<string, string>): string {
  mkdirSync(root, { recursive: true });
  for (const [p, content] of Object.entries(files)) {
    const full = join(root, p);
    if (p.endsWith('/')) { mkdirSync(full, { recursive: true }); continue; }
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(full, content, { mode: p.includes('bin/') ? 0o755 : 0o644 });
  }
  return root;
}

const writeSpec = (file: string, spec: unknown) => { writeFileSync(file, JSON.stringify(spec, null, 2)); return file; };

/** A busybox base image pushed to a real registry, then pinned with `fetch-image REF --json`. */
async function pulledBase(dir: string, store: string, registryPort: number, host: string): Promise<Record<string, unknown>> {
  const layout = await makeImage(join(dir, 'base-layout'), {
    layers: [{
      entries: [
        { type: 'dir', path: 'bin' }, { type: 'file', path: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
        { type: 'symlink', path: 'bin/sh', target: 'busybox' }, { type: 'dir', path: 'etc' },
        { type: 'file', path: 'etc/os-release', content: 'ID=fixture\n' }, { type: 'file', path: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n' },
      ],
    }],
    runConfig: { Env: ['PATH=/bin', 'BASE=1'], Cmd: ['/bin/sh'] },
  }, 'v1');
  await pushImage(layout.dir, registryPort, 'library/busybase', '1.0', { sourceTag: 'v1' });
  const pin = JSON.parse(await ok(store, ['--json', 'pull', '--tls-verify=false', `${host}/library/busybase:1.0`])) as Record<string, unknown>;
  return { ...pin, tlsVerify: false };
}

/** `app` (bin/app names `dep`) built by real Nix in its own chroot store, imported with its closure (nix-store --export → mirror unbundle). */
async function nixBuiltApp(dir: string, store: string): Promise<{ app: string; dep: string }> {
  const expr = join(dir, 'app.nix');
  writeFileSync(expr, `let bb = "/bin/busybox";
  dep = derivation { name = "dep"; system = builtins.currentSystem; builder = bb; args = ["sh" "-c" "\${bb} mkdir -p $out/share; echo hello > $out/share/greeting"]; };
in derivation { name = "app"; system = builtins.currentSystem; builder = bb; args = ["sh" "-c" "\${bb} mkdir -p $out/bin; echo \${dep} > $out/bin/app"]; }
`);
  const nixStore = ['--store', `local?root=${join(dir, 'nix-root')}`];
  const nixEnv = { ...env, NIX_CONFIG: 'build-users-group =\nsubstituters =\nsandbox-paths = /bin/busybox' };
  const app = (await runOk('nix-build', [...nixStore, expr, '--no-out-link'], { env: nixEnv })).toString().trim();
  const closure = (await runOk('nix-store', [...nixStore, '-qR', app], { env: nixEnv })).toString().trim().split('\n');
  const bundle = join(dir, 'app.closure');
  writeFileSync(bundle, await runOk('nix-store', [...nixStore, '--export', ...closure], { env: nixEnv }));
  await ok(store, ['mirror', 'unbundle', bundle]);
  return { app, dep: closure.find((p) => p.endsWith('-dep'))! };
}

test('a build on a pulled base: podman loads and mounts the merged tree, inspect shows Cmd/Env/User; skopeo reads it; a rerun does no work', async () => {
  if (!(havePeer('docker-registry') && havePeer('podman') && havePeer('skopeo') && havePeer('nix-build'))) return;
  const t = tempDir();
  const reg = await startRegistry();
  const pm = podman(t.path);
  try {
    const store = join(t.path, 's');
    const pin = await pulledBase(t.path, store, reg.port, reg.host);
    // A store path with a reference, made by real Nix and imported as its closure: the layer must bring both.
    const { app: appPath, dep: depPath } = await nixBuiltApp(t.path, store);
    const tool = writeTree(join(t.path, 'tool'), { 'bin/tool': '#!/bin/sh\necho tool\n' });
    const toolPath = await ok(store, ['store', 'add', tool]);
    writeTree(join(t.path, 'app'), { 'etc/app.conf': 'x=1\n' });
    const spec = writeSpec(join(t.path, 'app.json'), {
      name: 'example.org/team/app', tag: 'v1', fromImage: pin, copyToRoot: [appPath, './app'], compressor: 'none',
      config: { Cmd: [`${toolPath}/bin/tool`], Env: ['APP=1'], User: '1000:1000', WorkingDir: '/srv' },
      extraCommands: 'mkdir -p srv tmp && chmod 1777 tmp && echo made > srv/marker',
    });
    const r = await buildJson(store, spec);
    assert.is(r.source, 'built');
    assert.is(r.imageName, 'example.org/team/app');
    assert.is(r.imageTag, 'v1');
    assert.match(r.storePath, /^\/nix\/store\/[a-z0-9]{32}-docker-image-app\.tar$/);
    const localPath = r.added.find((p) => p.endsWith('-app') && p !== appPath);
    assert.ok(localPath, 'the local directory was added to the store and placed too');
    assert.equal([...r.added].sort(), [appPath, depPath, localPath, toolPath].sort(), 'closure from references and from the config');
    assert.equal(r.skipped, []);
    assert.match(r.layerDiffId, /^sha256:[0-9a-f]{64}$/);

    assert.match(await pm.load(r.path), /example\.org\/team\/app:v1/);
    const insp = await pm.inspect('example.org/team/app:v1');
    assert.equal(insp.Config.Cmd, [`${toolPath}/bin/tool`]);
    assert.equal(insp.Config.Env, ['PATH=/bin', 'BASE=1', 'APP=1'], "the base's Env comes first");
    assert.is(insp.Config.User, '1000:1000');
    assert.is(insp.RootFS.Layers.at(-1), r.layerDiffId);
    assert.is(`sha256:${(JSON.parse((await runOk('skopeo', ['inspect', '--raw', '--config', `docker-archive:${r.path}`])).toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids.at(-1)!.slice(7)}`, r.layerDiffId);
    const skopeo = JSON.parse((await runOk('skopeo', ['inspect', `docker-archive:${r.path}`])).toString()) as { Layers: string[]; Env: string[] };
    assert.is(skopeo.Layers.length, 2);

    const root = await pm.mount('example.org/team/app:v1');
    assert.is(readFileSync(join(root, 'etc/os-release'), 'utf8'), 'ID=fixture\n', 'base file');
    assert.ok(statSync(join(root, 'bin/busybox')).isFile(), 'base binary');
    assert.is(readlinkSync(join(root, 'bin/sh')), 'busybox');
    assert.is(readFileSync(join(root, 'bin/app'), 'utf8'), `${depPath}\n`, 'new file from copyToRoot[0]');
    assert.is(readFileSync(join(root, 'etc/app.conf'), 'utf8'), 'x=1\n', 'new file from the local copyToRoot[1]');
    assert.is(readFileSync(join(root, 'srv/marker'), 'utf8'), 'made\n', 'extraCommands ran in the root');
    assert.is(statSync(join(root, 'tmp')).mode & 0o7777, 0o1777);
    assert.is(readFileSync(join(root, depPath.slice(1), 'share/greeting'), 'utf8'), 'hello\n', 'the reference under /nix/store');
    assert.ok(existsSync(join(root, toolPath.slice(1), 'bin/tool')));
    // extraCommands worked on a copy: the store is intact.
    assert.is((await fi(store, ['store', 'verify', '--check-contents'])).code, 0);

    const again = await buildJson(store, spec);
    assert.is(again.source, 'store', 'no work the second time');
    assert.equal({ ...again, source: 'built' }, r, 'the same report');
    assert.is(await ok(store, ['build', spec]), r.storePath);

    // inspect: the build arguments (the deriver's), the config, the layers and where they came from.
    const insp2 = JSON.parse(await ok(store, ['--json', 'inspect', r.storePath])) as {
      buildArgs: { fromImage: string; copyToRoot: string[] }; config: { config: { User: string } };
      layers: { diffId: string; size: number; files: number; origin: { from: string; imageDigest?: string } }[];
    };
    assert.is(insp2.config.config.User, '1000:1000');
    assert.is(insp2.buildArgs.copyToRoot[0], appPath);
    assert.is(insp2.layers.length, 2);
    assert.is(insp2.layers[0]!.origin.from, 'base');
    assert.is(insp2.layers[0]!.origin.imageDigest, pin.imageDigest);
    assert.is(insp2.layers[1]!.origin.from, 'this build');
    assert.is(insp2.layers[1]!.diffId, r.layerDiffId);
    assert.ok(insp2.layers[1]!.files >= 8, 'entries counted');
    const pulled = JSON.parse(await ok(store, ['--json', 'inspect', `${reg.host}/library/busybase:1.0`])) as { pin: { imageDigest: string; hash: string } };
    assert.is(pulled.pin.imageDigest, pin.imageDigest);
    assert.is(pulled.pin.hash, pin.hash);
    const specView = JSON.parse(await ok(store, ['--json', 'inspect', spec])) as { valid: boolean; storePath: string };
    assert.is(specView.valid, true);
    assert.is(specView.storePath, r.storePath);
  } finally {
    await pm.unmountAll();
    await reg.stop();
    t.remove();
  }
});

test('determinism: two stores, other directories, umasks, time zones and clocks give identical bytes; SOURCE_DATE_EPOCH changes them', async () => {
  const t = tempDir();
  try {
    const mk = (dir: string) => {
      writeTree(join(dir, 'root'), { 'bin/hello': '#!/bin/sh\necho hi\n', 'etc/hello.conf': 'greeting=hi\n', 'var/empty/': '' });
      return writeSpec(join(dir, 'spec.json'), { name: 'hello', copyToRoot: ['./root'], config: { Cmd: ['/bin/hello'] } });
    };
    const a = join(t.path, 'a');
    const b = join(t.path, 'deep/er/b');
    const specA = mk(a);
    await new Promise((r) => setTimeout(r, 1100)); // other mtimes and another clock second
    const specB = mk(b);
    const r1 = await buildJson(join(t.path, 's1'), specA, [], { cwd: a, umask: '022', env: { TZ: 'UTC' } });
    const r2 = await buildJson(join(t.path, 's2'), 'spec.json', [], { cwd: b, umask: '077', env: { TZ: 'Pacific/Kiritimati' } });
    assert.is(r1.storePath, r2.storePath);
    assert.is(sha256(readFileSync(r1.path)), sha256(readFileSync(r2.path)), 'byte-identical gz archives');
    assert.match(r1.storePath, /docker-image-hello\.tar\.gz$/);
    assert.is(r1.imageTag, r1.storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32), 'tag null → the output hash part');
    const tar = gunzipSync(readFileSync(r1.path));
    assert.is(readFileSync(r1.path).subarray(4, 8).readUInt32LE(0), 0, 'gzip header without a time');
    if (havePeer('skopeo')) {
      const plain = join(t.path, 'plain.tar');
      writeFileSync(plain, tar);
      const cfg = JSON.parse((await runOk('skopeo', ['inspect', '--config', `docker-archive:${plain}`])).toString()) as { config: { Cmd: string[] }; created: string };
      assert.equal(cfg.config.Cmd, ['/bin/hello']);
      assert.is(cfg.created, '1970-01-01T00:00:01Z');
    }
    const other = await buildJson(join(t.path, 's1'), specA, [], { cwd: a, env: { SOURCE_DATE_EPOCH: '1700000000' } });
    assert.is.not(other.storePath, r1.storePath, 'SOURCE_DATE_EPOCH is part of the recipe');
    assert.is.not(other.layerDiffId, r1.layerDiffId);
    const flag = await buildJson(join(t.path, 's2'), specB, ['--source-date-epoch', '1700000000']);
    assert.is(flag.storePath, other.storePath);
    assert.is(sha256(readFileSync(flag.path)), sha256(readFileSync(other.path)));
  } finally {
    t.remove();
  }
});

test('only what is new: a base built by us with A, then A and B on top puts only B in the new layer', async () => {
  const t = tempDir();
  const pm = havePeer('podman') ? podman(t.path) : undefined;
  try {
    const store = join(t.path, 's');
    const aPath = await ok(store, ['store', 'add', writeTree(join(t.path, 'pkg-a'), { 'lib/a.txt': 'A\n' })]);
    const bPath = await ok(store, ['store', 'add', writeTree(join(t.path, 'pkg-b'), { 'lib/b.txt': 'B\n' })]);
    writeSpec(join(t.path, 'base.json'), { name: 'base', copyToRoot: [aPath], compressor: 'none' });
    const top = writeSpec(join(t.path, 'top.json'), { name: 'top', tag: 'x', fromImage: './base.json', copyToRoot: [aPath, bPath], compressor: 'none' });
    const r = await buildJson(store, top);
    assert.equal(r.added, [bPath]);
    assert.equal(r.skipped, [aPath]);
    // The new layer holds B's store files and not A's.
    const list = (await runOk('tar', ['-xOf', r.path, `${r.layerDiffId.slice(7)}/layer.tar`]).catch(async () => {
      const manifest = JSON.parse((await runOk('tar', ['-xOf', r.path, 'manifest.json'])).toString()) as { Layers: string[] }[];
      return runOk('tar', ['-xOf', r.path, manifest[0]!.Layers.at(-1)!]);
    }));
    const layerFile = join(t.path, 'layer.tar');
    writeFileSync(layerFile, list);
    const names = (await runOk('tar', ['-tf', layerFile])).toString().split('\n');
    assert.ok(names.some((n) => n.includes(`${bPath.slice(1)}/lib/b.txt`)), 'B under /nix/store');
    assert.not.ok(names.some((n) => n.includes(aPath.slice(1))), 'A is in the base already');
    if (pm) {
      await pm.load(r.path);
      const root = await pm.mount('localhost/top:x');
      assert.is(readFileSync(join(root, aPath.slice(1), 'lib/a.txt'), 'utf8'), 'A\n');
      assert.is(readFileSync(join(root, bPath.slice(1), 'lib/b.txt'), 'utf8'), 'B\n');
      assert.is(readFileSync(join(root, 'lib/b.txt'), 'utf8'), 'B\n');
      await pm.unmountAll();
    }
  } finally {
    t.remove();
  }
});

test('--format oci: umoci unpacks it', async () => {
  if (!havePeer('umoci')) return;
  const t = tempDir();
  try {
    writeTree(join(t.path, 'root'), { 'bin/run': '#!/bin/sh\n', 'etc/x': 'x\n' });
    const spec = writeSpec(join(t.path, 'spec.json'), { name: 'ocitest', tag: 't1', copyToRoot: ['./root'] });
    const r = await buildJson(join(t.path, 's'), spec, ['--format', 'oci']);
    assert.ok(statSync(r.path).isDirectory());
    const index = JSON.parse(readFileSync(join(r.path, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
    const ref = index.manifests[0]!.annotations?.['org.opencontainers.image.ref.name'] ?? 't1';
    const bundle = join(t.path, 'bundle');
    await runOk('umoci', ['unpack', '--rootless', '--image', `${r.path}:${ref}`, bundle]);
    assert.is(readFileSync(join(bundle, 'rootfs/etc/x'), 'utf8'), 'x\n');
    assert.ok(lstatSync(join(bundle, 'rootfs/bin/run')).isFile());
  } finally {
    t.remove();
  }
});

test('bad specs: one line naming the file and the key, exit 1, the store unchanged', async () => {
  const t = tempDir();
  try {
    const store = join(t.path, 's');
    const storeA = await ok(store, ['store', 'add', writeTree(join(t.path, 'a'), { 'etc/thing': 'file\n' })]);
    const storeB = await ok(store, ['store', 'add', writeTree(join(t.path, 'b'), { 'etc/thing/inner': 'dir\n' })]);
    const before = await ok(store, ['store', 'ls']);
    const cases: [string, unknown, RegExp][] = [
      ['unknown.json', { name: 'x', copyToRot: [] }, /^error: .*unknown\.json: copyToRot: unknown key \(did you mean 'copyToRoot'\?\)$/],
      ['noname.json', { tag: 'x' }, /^error: .*noname\.json: name: missing/],
      ['types.json', { name: 'x', config: { ExposedPorts: ['80/tcp'] } }, /^error: .*types\.json: config\.ExposedPorts: expected an object, got an array$/],
      ['uid.json', { name: 'x', uid: '0' }, /^error: .*uid\.json: uid: expected an integer/],
      ['compressor.json', { name: 'x', compressor: 'xz' }, /^error: .*compressor\.json: compressor: expected one of none, gz, zstd/],
      ['env.json', { name: 'x', config: { Env: ['A=1', 'B'] } }, /^error: .*env\.json: config\.Env\[1\]: expected NAME=VALUE/],
      ['missing.json', { name: 'x', copyToRoot: ['./nowhere'] }, /^error: .*missing\.json: copyToRoot\[0\]: \.\/nowhere: no such file or directory/],
      ['root.json', { name: 'x', runAsRoot: '#!/bin/sh\nid\n' }, /^error: .*runAsRoot needs a shell in the image: neither \/bin\/sh nor \/bin\/bash/],
      ['net.json', { name: 'x', network: 'yes' }, /^error: .*net\.json: network: expected true or false/],
      ['pinkey.json', { name: 'x', fromImage: { imageName: 'a', imageDigest: 'sha256:' + '0'.repeat(64), hash: 'sha256-' + 'A'.repeat(43) + '=', tag: 'x' } }, /^error: .*pinkey\.json: fromImage\.tag: unknown key/],
      ['conflict.json', { name: 'x', copyToRoot: [storeA, storeB] }, /^error: .*conflict\.json: .*etc\/thing.*copyToRoot\[1\].*copyToRoot\[0\]|^error: .*conflict\.json: .*etc\/thing.*copyToRoot\[0\].*copyToRoot\[1\]/],
    ];
    for (const [file, spec, want] of cases) {
      const r = await fi(store, ['build', writeSpec(join(t.path, file), spec)]);
      assert.is(r.code, 1, `${file}: ${r.stderr}`);
      assert.is(r.stderr.trim().split('\n').length, 1, `${file}: one line: ${r.stderr}`);
      assert.match(r.stderr.trim(), want);
    }
    const yaml = join(t.path, 'bad.yaml');
    writeFileSync(yaml, 'name: x\nconfig:\n  User: [1]\n');
    const ry = await fi(store, ['build', yaml]);
    assert.is(ry.code, 1);
    assert.match(ry.stderr.trim(), /bad\.yaml: config\.User: expected a string, got an array$/);
    assert.is(await ok(store, ['store', 'ls']), before, 'nothing added');
  } finally {
    t.remove();
  }
});

test('a fromImage pin whose hash does not match: one line naming fromImage, exit 102, nothing registered', async () => {
  if (!havePeer('docker-registry')) return;
  const t = tempDir();
  const reg = await startRegistry();
  try {
    const pinStore = join(t.path, 'pins');
    const pin = await pulledBase(t.path, pinStore, reg.port, reg.host);
    const wrong = { ...pin, hash: 'sha256-' + Buffer.alloc(32, 7).toString('base64'), sha256: undefined, storePath: undefined, path: undefined };
    const store = join(t.path, 's');
    const before = (await fi(store, ['store', 'ls'])).stdout.toString();
    const r = await fi(store, ['build', writeSpec(join(t.path, 'wrong.json'), { name: 'x', fromImage: wrong })]);
    assert.is(r.code, 102, r.stderr);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr.trim(), /^error: .*wrong\.json: fromImage: hash mismatch: the spec pins sha256-BwcH.*, the content is sha256-/);
    assert.is((await fi(store, ['store', 'ls'])).stdout.toString(), before);
    // The pin as printed, with its storePath, is checked before any network use.
    const moved = { ...pin, hash: wrong.hash, sha256: undefined };
    const r2 = await fi(store, ['build', writeSpec(join(t.path, 'moved.json'), { name: 'x', fromImage: moved })]);
    assert.is(r2.code, 1);
    assert.match(r2.stderr.trim(), /^error: .*moved\.json: fromImage\.storePath: the pin's hash and names give/);
  } finally {
    await reg.stop();
    t.remove();
  }
});

test('--out-link roots the output against gc; --dry-run does nothing; contents is accepted with a note', async () => {
  const t = tempDir();
  try {
    const store = join(t.path, 's');
    writeTree(join(t.path, 'root'), { 'etc/motd': 'hi\n' });
    const spec = writeSpec(join(t.path, 'spec.json'), { name: 'linked', contents: ['./root'], compressor: 'zstd' });
    const dry = await fi(store, ['build', spec, '--dry-run']);
    assert.is(dry.code, 0, dry.stderr);
    assert.match(dry.stdout.toString(), /will add copyToRoot\[0\]: .*\/root → \/nix\/store\/[a-z0-9]{32}-root\n/);
    assert.match(dry.stdout.toString(), /will build .*spec\.json: \/nix\/store\/[a-z0-9]{32}-docker-image-linked\.tar\.zst/);
    assert.match(dry.stderr, /contents: deprecated, use copyToRoot/);
    assert.is(await ok(store, ['store', 'ls']), '', 'dry run added nothing');
    const built = await ok(store, ['build', spec, '--out-link', 'result'], { cwd: t.path });
    assert.is(readlinkSync(join(t.path, 'result')), join(store, built));
    const gc = JSON.parse(await ok(store, ['--json', 'store', 'gc', '--dry-run'])) as { dead: string[] };
    assert.not.ok(gc.dead.includes(built), 'rooted through ./result');
    const closure = (await ok(store, ['store', 'closure', built])).split('\n');
    assert.ok(closure.includes(built));
    // The sandbox choice is not part of the recipe: the same path whichever is asked for.
    for (const sandbox of ['namespace', 'vm']) assert.is(await ok(store, ['build', spec, '--sandbox', sandbox]), built);
    // created: "now" is allowed, warned about, and recorded as impure in the recipe.
    const now = writeSpec(join(t.path, 'now.json'), { name: 'now', contents: ['./root'], created: 'now', compressor: 'none' });
    const rn = await fi(store, ['--json', 'build', now]);
    assert.is(rn.code, 0, rn.stderr);
    assert.match(rn.stderr, /created: "now" makes the image impure/);
    const nowInfo = JSON.parse(await ok(store, ['--json', 'inspect', (JSON.parse(rn.stdout.toString()) as { storePath: string }).storePath])) as { buildArgs: { impure: string[]; created: string }; config: { created: string } };
    assert.equal(nowInfo.buildArgs.impure, ['created']);
    assert.is(nowInfo.buildArgs.created, 'now');
    assert.ok(Math.abs(Date.parse(nowInfo.config.created) - Date.now()) < 120_000, 'the time of the build');
  } finally {
    t.remove();
  }
});

test.run();
