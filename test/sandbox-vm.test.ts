import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareLowerDir, runRootStage, SandboxError, type RootStageRequest } from '../lib/sandbox/index.js';
import { VmTimeoutError } from '../lib/sandbox/vm/index.js';
import { LocalStore } from '../lib/store/index.js';
import { rejects } from './helpers/assert.js';
import { havePeer } from './helpers/peers.js';
import { busyboxRoot, listTree, tarLayer, writeTree } from './helpers/sandbox-trees.js';
import { tempDir } from './helpers/tmp.js';

// The runAsRoot stage in a real QEMU guest (TCG here: KVM does not work on these machines).
// Each boot takes 10-60 s on a busy 2-core machine, so each test combines many checks in one.

function ready(): boolean {
  if (process.getuid?.() !== 0) {
    if (process.env.FETCH_IMAGE_REQUIRE_PEERS === '1') throw new Error('the vm sandbox tests need root to compare with the namespace runner (FETCH_IMAGE_REQUIRE_PEERS=1)');
    console.warn('  (not root: the vm sandbox tests pass vacuously here; CI runs them as root)');
    return false;
  }
  return ['qemu-system-x86_64', 'mke2fs', 'busybox', 'tar', 'unshare', 'python3'].every(havePeer);
}

const tmp = tempDir('fi-vm-');
process.env.XDG_CACHE_HOME = join(tmp.path, 'cache'); // the KVM probe's answer stays in this test
chmodSync(tmp.path, 0o755); // the non-root test reads the store and lowers from here
const STORE_ROOT = join(tmp.path, 'store');
const store = (): LocalStore => new LocalStore({ root: STORE_ROOT });
const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', SOURCE_DATE_EPOCH: '315532800' };
let runs = 0;

/** The two layers of the namespace runner's tests: a busybox root, and a top layer with a whiteout and an opaque dir. */
function layerTars(): { base: string; top: string } {
  const base = join(tmp.path, 'base.tar');
  const top = join(tmp.path, 'top.tar');
  if (existsSync(top)) return { base, top };
  const a = join(tmp.path, 'src-base');
  busyboxRoot(a);
  writeTree(a, { 'etc/keep': 'k\n', 'etc/keep2': 'k2\n', 'etc/gone': 'g\n', 'dir/old1': '1', 'dir/old2': '2', 'dir2/old': 'o', 'var/lib/x': 'x' });
  const b = join(tmp.path, 'src-top');
  writeTree(b, { 'etc/b-file': 'b\n', 'etc/.wh.keep2': '', 'dir2/.wh..wh..opq': '', 'dir2/new': 'n' });
  tarLayer(a, base);
  tarLayer(b, top);
  return { base, top };
}

async function overlayLowers(): Promise<string[]> {
  const { base, top } = layerTars();
  const dirs = [join(tmp.path, 'lower-top'), join(tmp.path, 'lower-base')];
  if (!existsSync(dirs[0]!)) {
    await prepareLowerDir(top, dirs[0]!);
    await prepareLowerDir(base, dirs[1]!);
  }
  return dirs;
}

function storeDir(): { real: string; logical: string } {
  const s = store();
  const pkg = join(s.physicalStoreDir, 'abcdabcdabcdabcdabcdabcdabcdabcd-pkg');
  if (!existsSync(pkg)) {
    mkdirSync(pkg);
    writeFileSync(join(pkg, 'file'), 'in the store\n');
  }
  return { real: s.physicalStoreDir, logical: '/nix/store' };
}

function newUpper(owner?: number): string {
  const dir = join(tmp.path, `upper-${++runs}`);
  mkdirSync(dir);
  if (owner !== undefined) chownSync(dir, owner, owner);
  return dir;
}

function request(lowerDirs: string[], script: string, extra: Partial<RootStageRequest> = {}): RootStageRequest {
  return {
    lowerDirs, upperDir: newUpper(), storeDir: storeDir(), script: `#!/bin/sh\nset -e\n${script}`, env: ENV,
    network: false, timeoutMs: 600_000, memoryMiB: 256, diskSizeMiB: 256, ...extra,
  };
}

/** The upper dir as a layer tar would hold it: GNU tar, sorted, numeric owners, one mtime. */
function layerBytes(dir: string): Buffer {
  return execFileSync('tar', ['--sort=name', '--numeric-owner', '--mtime=@315532800', '--format=gnu', '-C', dir, '-cf', '-', '.'], { maxBuffer: 1 << 28 });
}
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const qemuProcesses = (): string[] => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
  try {
    return readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('qemu-system') && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('fetch-image-vm-');
  } catch {
    return false;
  }
});
const vmWorkDirs = (): string[] => readdirSync('/tmp').filter((n) => n.startsWith('fetch-image-vm-'));

const SCRIPT = [
  'test ! -e /etc/keep2 && test ! -e /dir2/old && test -e /dir2/new',
  'cat /etc/keep /nix/store/abcdabcdabcdabcdabcdabcdabcdabcd-pkg/file',
  'rm /etc/gone',
  'echo new > /etc/added',
  'rm -rf /dir && mkdir /dir && echo fresh > /dir/fresh',
  'mkdir -p /home/u/deep && touch /home/u/f && chown -R 1000:1001 /home/u && chmod 0750 /home/u',
  'ln /etc/added /etc/added-link && ln -s ../etc/added /home/sym',
  'mknod /realdev c 1 3 && mknod /blockdev b 7 0 && mkfifo /fifo',
  'echo x > /var/lib/x',
  'echo scratch > /tmp/scratch',
  'test "$(hostname)" = localhost && test "$(id -u)" = 0',
  'if echo no > /nix/store/abcdabcdabcdabcdabcdabcdabcdabcd-pkg/file; then echo store-writable; else echo store-read-only; fi',
  'if printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 2 10.0.2.2 80; then echo net-up; else echo net-down; fi',
  'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "',
  'env | sort',
  'for i in $(seq 1 25); do echo line $i; done',
  'exit 3',
].join('\n');

test('vm and namespace give byte-identical upper dirs; exit code, output tail, no network, read-only store, env', async () => {
  if (!ready()) return;
  const lowers = await overlayLowers();
  const ns = request(lowers, SCRIPT);
  const nsResult = await runRootStage('namespace', ns);
  assert.is(nsResult.exitCode, 3, nsResult.outputTail.join('\n'));

  const vm = request(lowers, SCRIPT);
  const notes: string[] = [];
  const lines: string[] = [];
  const t0 = Date.now();
  const r = await runRootStage('vm', { ...vm, onOutput: (l) => lines.push(l), onNote: (n) => notes.push(n) });
  console.log(`  vm run (${r.accel}): ${Date.now() - t0} ms`);
  assert.is(r.kind, 'vm');
  assert.is(r.exitCode, 3, lines.join('\n'));
  assert.is(r.accel, 'tcg');
  assert.is(notes.length, 1);
  assert.match(notes[0]!, /running under TCG/);
  assert.equal(r.outputTail, nsResult.outputTail);
  assert.is(r.outputTail.length, 20);
  assert.is(r.outputTail[19], 'line 25');
  assert.ok(lines.includes('in the store'));
  assert.ok(lines.includes('store-read-only'));
  assert.match(lines.join('\n'), /Read-only file system/);
  assert.ok(lines.includes('net-down'));
  // the interfaces in /proc/net/dev: loopback only
  const ifaces = lines.slice(lines.indexOf('net-down') + 1, lines.findIndex((l) => l.startsWith('HOME=')));
  assert.equal(ifaces, ['lo']);
  assert.equal(lines.filter((l) => /^[A-Z_]+=/.test(l) && !/^(PWD|SHLVL)=/.test(l)), ['HOME=/root', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'SOURCE_DATE_EPOCH=315532800']);

  const t = listTree(vm.upperDir);
  assert.equal([...t.keys()], [
    'blockdev', 'dir', 'dir/.wh..wh..opq', 'dir/fresh', 'etc', 'etc/.wh.gone', 'etc/added', 'etc/added-link', 'fifo',
    'home', 'home/sym', 'home/u', 'home/u/deep', 'home/u/f', 'realdev', 'var', 'var/lib', 'var/lib/x',
  ]);
  assert.equal(t.get('etc/.wh.gone'), { type: 'file', uid: 0, gid: 0, mode: 0o644 });
  assert.equal(t.get('dir/.wh..wh..opq'), { type: 'file', uid: 0, gid: 0, mode: 0o644 });
  assert.equal(t.get('home/u'), { type: 'dir', uid: 1000, gid: 1001, mode: 0o750 });
  assert.equal(t.get('realdev'), { type: 'char', uid: 0, gid: 0, mode: 0o644, rdev: '1,3' });
  assert.equal(t.get('blockdev'), { type: 'block', uid: 0, gid: 0, mode: 0o644, rdev: '7,0' });
  assert.equal(t.get('home/sym'), { type: 'symlink', uid: 0, gid: 0, mode: 0o777, target: '../etc/added' });
  assert.equal(listTree(vm.upperDir), listTree(ns.upperDir));
  assert.is(sha(layerBytes(vm.upperDir)), sha(layerBytes(ns.upperDir)));
  assert.equal(qemuProcesses(), []);
  assert.equal(vmWorkDirs(), []);
});

test('the initrd is built once and kept in the store', () => {
  if (!ready()) return;
  const paths = store().list().map((i) => i.path).filter((p) => p.includes('fetch-image-vm-initrd-'));
  assert.is(paths.length, 1);
  // gzip-compressed newc: the kernel's initramfs format
  const head = execFileSync('sh', ['-c', `gzip -dc '${store().realPath(paths[0]!)}' | head -c 6`]).toString();
  assert.is(head, '070701');
});

test('a guest that does not finish booting in time is killed; the message names the stage', async () => {
  if (!ready()) return;
  const req = request(await overlayLowers(), 'true\n', { timeoutMs: 2500 });
  const e = await rejects(() => runRootStage('vm', req), /did not finish within 2\.5 s and was killed while booting the VM/);
  assert.ok(e instanceof VmTimeoutError);
  assert.ok(e instanceof SandboxError);
  assert.equal(qemuProcesses(), []);
  assert.equal(vmWorkDirs(), []);
});

const SIGNAL_CHILD = fileURLToPath(new URL('./helpers/vm-signal-child.js', import.meta.url));

test('SIGTERM while the guest boots: QEMU is killed, the temp disk and work dir are removed, the process ends by the signal', async () => {
  if (!ready()) return;
  const req = request(await overlayLowers(), 'sleep 1000\n', { timeoutMs: 600_000 });
  const before = vmWorkDirs();
  const child = spawn(process.execPath, [SIGNAL_CHILD, JSON.stringify(req)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  const t0 = Date.now();
  while (qemuProcesses().length === 0 && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 100));
  assert.is(qemuProcesses().length, 1, 'QEMU started');
  assert.is(vmWorkDirs().length, before.length + 1);
  child.kill('SIGTERM');
  const exit = await ended;
  assert.equal(exit, { code: null, signal: 'SIGTERM' });
  assert.equal(qemuProcesses(), []);
  assert.equal(vmWorkDirs(), before);
});

const TEST_USER = `fi-vm-${process.pid}`;
const CHILD = fileURLToPath(new URL('./helpers/vm-rootless-child.js', import.meta.url));

test('a non-root caller: tar-form lowers unpacked in the guest, same tree as the namespace runner (owners aside)', async () => {
  if (!ready() || !havePeer('useradd') || !havePeer('runuser')) return;
  const script = 'rm /etc/gone\nrm -rf /dir && mkdir /dir && echo fresh > /dir/fresh\nmkdir /data && echo d > /data/f && chmod 0700 /data\ncat /etc/keep\n';
  const { base, top } = layerTars();
  const ns = request(await overlayLowers(), script);
  assert.is((await runRootStage('namespace', ns)).exitCode, 0);

  execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', TEST_USER]);
  try {
    const uid = Number(execFileSync('id', ['-u', TEST_USER]).toString().trim());
    const work = join(tmp.path, 'rootless');
    mkdirSync(work);
    chownSync(work, uid, uid);
    const upper = newUpper(uid);
    const job = { layers: [top, base], work, upper, storeDir: storeDir(), script: `#!/bin/sh\nset -e\n${script}`, env: ENV };
    const r = spawnSync('runuser', ['-u', TEST_USER, '--', process.execPath, CHILD, JSON.stringify(job)], {
      encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', XDG_CACHE_HOME: join(work, 'cache') }, timeout: 900_000,
    });
    assert.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as { exitCode: number; accel: string; forms: string[]; outputTail: string[] };
    assert.equal(result.forms, ['tar', 'tar']);
    assert.is(result.exitCode, 0, result.outputTail.join('\n'));
    assert.is(result.accel, 'tcg');
    assert.equal(result.outputTail, ['k']);
    const withoutOwners = (dir: string): [string, string, number][] => [...listTree(dir)].map(([p, e]) => [p, e.type, e.mode]);
    assert.equal(withoutOwners(upper), withoutOwners(ns.upperDir));
    assert.is(readFileSync(join(upper, 'dir/fresh'), 'utf8'), 'fresh\n');
    assert.ok([...listTree(upper).values()].every((e) => e.uid === uid));
  } finally {
    spawnSync('userdel', [TEST_USER]);
  }
});

test.after(() => tmp.remove());

test.run();
