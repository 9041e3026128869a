import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { shadowSetup } from '../lib/build/shadow-setup.js';
import {
  LOWER_FORM_MARKER, RootStageTimeoutError, SandboxError, chooseSandbox, prepareLowerDir, runRootStage,
  type RootStageRequest,
} from '../lib/sandbox/index.js';
import { rejects } from './helpers/assert.js';
import { startServer } from './helpers/http-servers.js';
import { havePeer } from './helpers/peers.js';
import { busyboxRoot, hostPrograms, listTree, tarLayer, writeTree } from './helpers/sandbox-trees.js';
import { tempDir } from './helpers/tmp.js';

// The runAsRoot namespace sandbox on the real kernel: overlayfs, namespaces, pivot_root.

function ready(): boolean {
  if (process.getuid?.() !== 0) {
    if (process.env.FETCH_IMAGE_REQUIRE_PEERS === '1') throw new Error('the sandbox tests need root (FETCH_IMAGE_REQUIRE_PEERS=1)');
    console.warn('  (not root: the namespace sandbox tests pass vacuously here; CI runs them as root)');
    return false;
  }
  return ['unshare', 'setpriv', 'python3', 'tar', 'busybox'].every(havePeer);
}

const tmp = tempDir('fi-sandbox-');
const TOP = join(tmp.path, 'top');
const BASE = join(tmp.path, 'base');
const STORE = join(tmp.path, 'store');
let prepared = false;
let runs = 0;

/**
 * Two layers, unpacked with prepareLowerDir: a busybox root file system (base), and a top layer
 * that deletes /etc/keep2 (whiteout) and makes /dir2 opaque (only its new entry left).
 */
async function lowers(): Promise<string[]> {
  if (prepared) return [TOP, BASE];
  const a = join(tmp.path, 'src-base');
  busyboxRoot(a);
  writeTree(a, { 'etc/keep': 'k\n', 'etc/keep2': 'k2\n', 'etc/gone': 'g\n', 'etc/readonly': 'r\n', 'dir/old1': '1', 'dir/old2': '2', 'dir2/old': 'o' });
  const b = join(tmp.path, 'src-top');
  writeTree(b, { 'etc/b-file': 'b\n', 'etc/.wh.keep2': '', 'dir2/.wh..wh..opq': '', 'dir2/new': 'n' });
  await prepareLowerDir(tarLayer(a, join(tmp.path, 'base.tar')), BASE);
  await prepareLowerDir(tarLayer(b, join(tmp.path, 'top.tar')), TOP);
  mkdirSync(join(STORE, 'abc-pkg'), { recursive: true });
  writeFileSync(join(STORE, 'abc-pkg/file'), 'in the store\n');
  prepared = true;
  return [TOP, BASE];
}

async function request(script: string, extra: Partial<RootStageRequest> = {}): Promise<RootStageRequest> {
  const upperDir = join(tmp.path, `upper-${++runs}`);
  mkdirSync(upperDir, 0o700); // as a caller's mkdtemp makes it
  return {
    lowerDirs: await lowers(), upperDir, storeDir: { real: STORE, logical: '/nix/store' },
    script: `#!/bin/sh\nset -e\n${script}`, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', SOURCE_DATE_EPOCH: '315532800' },
    network: false, timeoutMs: 30_000, memoryMiB: 512, diskSizeMiB: 1024, ...extra,
  };
}

const mountinfo = (): string => readFileSync('/proc/self/mountinfo', 'utf8');

/** Host pids whose command line holds `marker`. */
function processesWith(marker: string): string[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker);
    } catch {
      return false;
    }
  });
}

/** Work dirs the runner leaves beside upper dirs while it runs. */
const workDirs = (): string[] => readdirSync(tmp.path).filter((n) => n.includes('.ns-'));

test('prepareLowerDir keeps owners, modes, times, devices and links, and turns OCI whiteouts into overlay ones', async () => {
  if (!ready()) return;
  const src = join(tmp.path, 'src-meta');
  writeTree(src, { 'a/f': 'hello', 'opq/.wh..wh..opq': '', '.wh.deleted': '' });
  chownSync(join(src, 'a/f'), 1000, 1001);
  chmodSync(join(src, 'a/f'), 0o4750);
  linkSync(join(src, 'a/f'), join(src, 'a/hard'));
  symlinkSync('/etc/passwd', join(src, 'a/abs'));
  execFileSync('mknod', ['-m', '640', join(src, 'null'), 'c', '1', '3']);
  utimesSync(join(src, 'a'), 1_000_000, 1_000_000);
  const out = join(tmp.path, 'lower-meta');
  await prepareLowerDir(tarLayer(src, join(tmp.path, 'meta.tar')), out);
  assert.is(readFileSync(join(out, LOWER_FORM_MARKER), 'utf8'), 'overlay\n');
  const t = listTree(join(out, 'root'));
  assert.equal(t.get('a/f'), { type: 'file', uid: 1000, gid: 1001, mode: 0o4750 });
  assert.is(lstatSync(join(out, 'root/a/hard')).ino, lstatSync(join(out, 'root/a/f')).ino);
  assert.equal(t.get('a/abs'), { type: 'symlink', uid: 0, gid: 0, mode: 0o777, target: '/etc/passwd' });
  assert.equal(t.get('null'), { type: 'char', uid: 0, gid: 0, mode: 0o640, rdev: '1,3' });
  assert.equal(t.get('deleted'), { type: 'char', uid: 0, gid: 0, mode: 0o644, rdev: '0,0' });
  assert.not.ok(t.has('.wh.deleted'));
  assert.not.ok(t.has('opq/.wh..wh..opq'));
  assert.is(opaqueXattr(join(out, 'root/opq')), 'y');
  assert.is(lstatSync(join(out, 'root/a')).mtimeMs, 1_000_000_000);
});

test("prepareLowerDir gives GNU tar's tree (tar -xp --numeric-owner as root) for the host's /etc and /usr/sbin", async () => {
  if (!ready()) return;
  const layer = join(tmp.path, 'host.tar');
  execFileSync('tar', ['--numeric-owner', '-C', '/', '-cf', layer, 'etc', 'usr/sbin']);
  const gnu = join(tmp.path, 'host-gnu');
  mkdirSync(gnu);
  execFileSync('tar', ['--numeric-owner', '-xpf', layer, '-C', gnu]);
  const ours = join(tmp.path, 'host-ours');
  await prepareLowerDir(layer, ours);
  // type, owner, mode, mtime (s), size, link count, link target; '.' and the implicit usr/ are no members
  const describe = (root: string): string[] => execFileSync('find', ['.', '-mindepth', '1', '-not', '-path', './usr', '-printf', '%p %y %U:%G %m %Ts %s %n %l\\n'], { cwd: root })
    .toString().split('\n').sort();
  const expected = describe(gnu);
  assert.ok(expected.length > 500);
  assert.equal(describe(join(ours, 'root')), expected);
});

test('prepareLowerDir refuses a member outside the dir and leaves nothing', async () => {
  if (!ready()) return;
  const { encodeTarHeader } = await import('../lib/image/index.js');
  const bad = Buffer.concat([encodeTarHeader({ name: '../evil', type: 'file', size: 0 }), Buffer.alloc(1024)]);
  const path = join(tmp.path, 'bad.tar');
  writeFileSync(path, bad);
  await rejects(() => prepareLowerDir(path, join(tmp.path, 'lower-bad')), /refusing archive entry '\.\.\/evil'/);
  const dotdot = Buffer.concat([encodeTarHeader({ name: 'a/.wh...', type: 'file', size: 0 }), Buffer.alloc(1024)]);
  writeFileSync(path, dotdot);
  await rejects(() => prepareLowerDir(path, join(tmp.path, 'lower-bad')), /refusing archive entry 'a\/\.wh\.\.\.': it is a whiteout of no name, of \. or of \.\./);
  assert.equal(readdirSync(tmp.path).filter((n) => n.includes('lower-bad')), []);
});

function opaqueXattr(path: string): string {
  return execFileSync('python3', ['-c', 'import os,sys;print(os.getxattr(sys.argv[1],"trusted.overlay.opaque").decode())', path]).toString().trim();
}

test('changes over two layers: whiteouts, opaque dirs, owners and devices; read-only files stay out', async () => {
  if (!ready()) return;
  const before = mountinfo();
  const req = await request([
    'test ! -e /etc/keep2 && test ! -e /dir2/old && test -e /dir2/new && test -e /etc/b-file',
    'cat /etc/readonly /etc/keep /nix/store/abc-pkg/file',
    'rm /etc/gone',
    'echo new > /etc/added',
    'rm -rf /dir && mkdir /dir && echo fresh > /dir/fresh',
    'mkdir /home && touch /home/u && chown 1000:1000 /home/u',
    'mknod /realdev c 1 3',
    'echo scratch > /tmp/scratch',
    'test "$(hostname)" = localhost && test "$(id -u)" = 0 && test "$(stat -c %a:%u /)" = 755:0',
    'env | sort',
  ].join('\n'));
  const lines: string[] = [];
  const r = await runRootStage('namespace', { ...req, onOutput: (l) => lines.push(l) });
  assert.is(r.exitCode, 0, lines.join('\n'));
  assert.is(r.kind, 'namespace');
  assert.ok(lines.includes('in the store'));
  // exactly req.env (a shell adds PWD and SHLVL of its own)
  assert.equal(lines.filter((l) => /^[A-Z_]+=/.test(l) && !/^(PWD|SHLVL)=/.test(l)), ['HOME=/root', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'SOURCE_DATE_EPOCH=315532800']);
  const t = listTree(req.upperDir);
  assert.equal([...t.keys()], [
    'dir', 'dir/.wh..wh..opq', 'dir/fresh', 'etc', 'etc/.wh.gone', 'etc/added', 'home', 'home/u', 'realdev',
  ]);
  assert.equal(t.get('etc/.wh.gone'), { type: 'file', uid: 0, gid: 0, mode: 0o644 });
  assert.equal(t.get('home/u'), { type: 'file', uid: 1000, gid: 1000, mode: 0o644 });
  assert.equal(t.get('realdev'), { type: 'char', uid: 0, gid: 0, mode: 0o644, rdev: '1,3' });
  assert.is(mountinfo(), before);
  assert.equal(workDirs(), []);
});

test('a failing script: its exit code and the last 20 lines', async () => {
  if (!ready()) return;
  const before = mountinfo();
  const r = await runRootStage('namespace', await request('for i in $(seq 1 30); do echo line $i; done\necho to stderr >&2\nexit 7\n'));
  assert.is(mountinfo(), before);
  assert.equal(workDirs(), []);
  assert.is(r.exitCode, 7);
  assert.is(r.outputTail.length, 20);
  assert.is(r.outputTail[0], 'line 12');
  assert.is(r.outputTail[19], 'to stderr');
});

test('no network without network: true (loopback only), the host reachable with it', async () => {
  if (!ready()) return;
  const server = await startServer((_req, res) => res.end('reached\n'));
  try {
    // busybox's wget crashes on this libc-less build; nc speaks enough HTTP
    const fetch = `printf 'GET /x HTTP/1.0\\r\\n\\r\\n' | nc -w 3 127.0.0.1 ${server.port}`;
    const closed = await runRootStage('namespace', await request(`${fetch}\n`));
    assert.is.not(closed.exitCode, 0);
    assert.equal(server.requests, []);
    const open = await runRootStage('namespace', await request(`${fetch}\n`, { network: true }));
    assert.is(open.exitCode, 0, open.outputTail.join('\n'));
    assert.is(open.outputTail[open.outputTail.length - 1], 'reached');
    assert.is(server.requests.length, 1);
  } finally {
    await server.close();
  }
});

test('the store is read-only', async () => {
  if (!ready()) return;
  const r = await runRootStage('namespace', await request('echo x > /nix/store/abc-pkg/file\n'));
  assert.is.not(r.exitCode, 0);
  assert.match(r.outputTail.join('\n'), /Read-only file system/);
  assert.is(readFileSync(join(STORE, 'abc-pkg/file'), 'utf8'), 'in the store\n');
});

test('a hung script is killed at the timeout with everything it started; no mounts or work dirs left', async () => {
  if (!ready()) return;
  const before = mountinfo();
  const req = await request('echo started\n(sleep 98765 &)\nsleep 98764\n', { timeoutMs: 1500 });
  const t0 = Date.now();
  const e = await rejects(() => runRootStage('namespace', req), /did not finish within 1\.5 s/);
  assert.ok(e instanceof RootStageTimeoutError);
  assert.equal(e instanceof RootStageTimeoutError ? e.outputTail : [], ['started']);
  assert.ok(Date.now() - t0 < 10_000);
  assert.equal(processesWith('9876'), []);
  assert.is(mountinfo(), before);
  assert.equal(workDirs(), []);
});

for (const [sig, marker] of [['SIGTERM', '98762'], ['SIGINT', '98760']] as const) {
  test(`${sig} to the Node process running a stage: its processes die, no mounts or work dirs left`, async () => {
    if (!ready()) return;
    const before = mountinfo();
    const req = await request(`echo started\n(sleep ${marker}1 &)\nsleep ${marker}\n`);
    const reqFile = join(tmp.path, 'req.json');
    writeFileSync(reqFile, JSON.stringify(req));
    const fixture = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures/sandbox-stage.js');
    const child = spawn(process.execPath, [fixture, reqFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('out: started')) resolve();
      });
      child.once('close', () => reject(new Error(`the fixture ended before the stage started: ${out}`)));
    });
    for (let i = 0; i < 100 && processesWith(marker).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(processesWith(marker).length > 0, 'the stage has started its sleep');
    const ended = new Promise<NodeJS.Signals | null>((resolve) => child.once('close', (_code, signal) => resolve(signal)));
    child.kill(sig);
    assert.is(await ended, sig);
    assert.equal(processesWith(marker), []);
    assert.is(mountinfo(), before);
    assert.equal(workDirs(), []);
  });
}

test("the seed's example: ${shadowSetup}, groupadd, useradd, mkdir, chown with the host's shadow tools", async () => {
  if (!ready() || !havePeer('useradd')) return;
  const src = join(tmp.path, 'src-debianish');
  hostPrograms(src, ['/bin/bash', '/usr/sbin/useradd', '/usr/sbin/groupadd', '/bin/mkdir', '/bin/chown', '/bin/touch', '/bin/cat']);
  writeTree(src, { 'etc/hostname': 'debianish\n' });
  mkdirSync(join(src, 'tmp'));
  symlinkSync('bash', join(src, 'bin/sh'));
  const lower = join(tmp.path, 'lower-debianish');
  await prepareLowerDir(tarLayer(src, join(tmp.path, 'debianish.tar')), lower);
  const upperDir = join(tmp.path, 'upper-shadow');
  mkdirSync(upperDir);
  const script = `#!/bin/bash\nset -e\n${shadowSetup('current', '/usr/sbin', '/bin/bash')}groupadd -r redis\nuseradd -r -g redis redis\nmkdir /data\nchown redis:redis /data\n`;
  const r = await runRootStage('namespace', {
    lowerDirs: [lower], upperDir, storeDir: { real: STORE, logical: '/nix/store' }, script,
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' }, network: false, timeoutMs: 30_000, memoryMiB: 512, diskSizeMiB: 1024,
  });
  assert.is(r.exitCode, 0, r.outputTail.join('\n'));
  const passwd = readFileSync(join(upperDir, 'etc/passwd'), 'utf8');
  const redis = /^redis:x:(\d+):(\d+):/m.exec(passwd);
  assert.ok(redis, passwd);
  const t = listTree(upperDir);
  assert.equal(t.get('data'), { type: 'dir', uid: Number(redis?.[1]), gid: Number(redis?.[2]), mode: 0o755 });
  const top = [...t.keys()].filter((k) => !k.includes('/') || k.startsWith('etc/'));
  for (const k of top) assert.ok(/^(data|etc|etc\/(passwd|group|shadow|gshadow|login\.defs|pam\.d|pam\.d\/other|\.pwd\.lock)-?)$/.test(k), `unexpected in the layer: ${k}`);
  assert.not.ok(t.has('usr'));
  assert.not.ok(t.has('bin'));
});

test("chooseSandbox: root here, so 'auto' is the namespace sandbox; 'vm' is always vm", async () => {
  if (!ready()) return;
  assert.is(await chooseSandbox('auto'), 'namespace');
  assert.is(await chooseSandbox('namespace'), 'namespace');
  assert.is(await chooseSandbox('vm'), 'vm');
});

test('a lower dir in tar form is refused by the namespace sandbox with what to do', async () => {
  if (!ready()) return;
  const dir = join(tmp.path, 'lower-tarform');
  mkdirSync(dir);
  writeFileSync(join(dir, LOWER_FORM_MARKER), 'tar\n');
  const req = await request('true\n');
  const e = await rejects(() => runRootStage('namespace', { ...req, lowerDirs: [dir] }), /prepared without root \(tar form\).*--sandbox vm/);
  assert.ok(e instanceof SandboxError);
});

test('an abort signal stops the stage: nothing left running', async () => {
  if (!ready()) return;
  const ctl = new AbortController();
  const req = await request('echo started\nsleep 98761\n', { signal: ctl.signal, onOutput: () => ctl.abort(new Error('stopped by the caller')) });
  await rejects(() => runRootStage('namespace', req), /stopped by the caller/);
  assert.equal(processesWith('98761'), []);
  assert.equal(workDirs(), []);
});

test('a name the script makes with the .wh. prefix is refused: a layer cannot hold it', async () => {
  if (!ready()) return;
  await rejects(async () => runRootStage('namespace', await request('touch /etc/.wh.sneaky\n')), /the script created a name starting with \.wh\..*etc\/\.wh\.sneaky/);
});

test('a missing #! interpreter is a setup error that says so', async () => {
  if (!ready()) return;
  const req = await request('');
  await rejects(() => runRootStage('namespace', { ...req, script: '#!/no/such/shell\ntrue\n' }), /cannot start the script \(is its #! interpreter in the image\?\)/);
});

test('no base layers: a plain directory (copyToRoot contents) as the only lower', async () => {
  if (!ready()) return;
  const root = join(tmp.path, 'plain-root');
  busyboxRoot(root);
  const req = await request('ls /bin/busybox && echo made > /made\n');
  const r = await runRootStage('namespace', { ...req, lowerDirs: [root] });
  assert.is(r.exitCode, 0, r.outputTail.join('\n'));
  assert.equal([...listTree(req.upperDir).keys()], ['made']);
});

test("without root: prepareLowerDir keeps the tar (tar form); 'auto' picks vm, 'namespace' says to use vm", async () => {
  if (!ready()) return;
  const dir = join(tmp.path, 'as-nobody');
  mkdirSync(dir);
  chmodSync(tmp.path, 0o755);
  chownSync(dir, 65534, 65534);
  const layer = tarLayer(join(tmp.path, 'src-base'), join(dir, 'layer-in.tar'));
  chmodSync(layer, 0o644);
  const lib = join(fileURLToPath(new URL('.', import.meta.url)), '../lib/sandbox/index.js');
  const program = `const s = await import(${JSON.stringify(lib)});
await s.prepareLowerDir(${JSON.stringify(layer)}, ${JSON.stringify(join(dir, 'lower'))});
console.log(await s.chooseSandbox('auto'));
try { await s.chooseSandbox('namespace'); } catch (e) { console.log(e.message); }`;
  const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', program]).toString();
  const [auto, refusal] = out.trim().split('\n');
  assert.is(auto, 'vm');
  assert.match(refusal ?? '', /runs as root only .*use --sandbox vm/);
  assert.is(readFileSync(join(dir, 'lower', LOWER_FORM_MARKER), 'utf8'), 'tar\n');
  assert.ok(readFileSync(join(dir, 'lower/layer.tar')).equals(readFileSync(layer)));
  assert.is(lstatSync(join(dir, 'lower/layer.tar')).uid, 65534);
});

test('starts in milliseconds', async () => {
  if (!ready()) return;
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const req = await request('true\n');
    const t0 = performance.now();
    const r = await runRootStage('namespace', req);
    times.push(performance.now() - t0);
    assert.is(r.exitCode, 0);
  }
  times.sort((x, y) => x - y);
  console.log(`  namespace stage (true over 2 layers), whole run incl. teardown: median ${times[2]?.toFixed(0)} ms, min ${times[0]?.toFixed(0)} ms`);
  assert.ok((times[2] ?? Infinity) < 2000);
});

test.after(() => tmp.remove());
test.run();
