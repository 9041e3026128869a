import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, writeNewc } from '../lib/sandbox/vm/cpio.js';
import { renderJob, shQuote } from '../lib/sandbox/vm/guest-init.js';
import { planInitrd, readModule } from '../lib/sandbox/vm/initrd.js';
import { GUEST_MODULES, findKernel, loadModuleIndex, parseModulesDep, resolveModules } from '../lib/sandbox/vm/kernel.js';
import { probeKvm } from '../lib/sandbox/vm/kvm-probe.js';
import { qemuArgs } from '../lib/sandbox/vm/qemu.js';
import { checkMemberName, extractUpper } from '../lib/sandbox/vm/upper.js';
import { rejects } from './helpers/assert.js';
import { havePeer } from './helpers/peers.js';
import { listTree } from './helpers/sandbox-trees.js';
import { tempDir } from './helpers/tmp.js';

// The VM runner's parts that need no full guest run: the cpio format against GNU cpio, the
// kernel's modules, the job files, the KVM probe.

const tmp = tempDir('fi-vm-parts-');
const root = process.getuid?.() === 0;

test('our newc archive is read by GNU cpio: names, types, modes, owners, devices, symlinks, data', () => {
  if (!havePeer('cpio')) return;
  const archive = writeNewc([
    { name: 'bin', mode: S_IFDIR | 0o755 },
    { name: 'bin/tool', mode: S_IFREG | 0o4755, uid: 12, gid: 34, mtime: 1_000_000, data: Buffer.from('#!/bin/sh\necho hi\n') },
    { name: 'bin/sh', mode: S_IFLNK | 0o777, data: Buffer.from('tool') },
    { name: 'dev', mode: S_IFDIR | 0o755 },
    { name: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 },
    { name: 'odd name ünïcode', mode: S_IFREG | 0o644, data: Buffer.from('x') },
  ]);
  assert.is(archive.length % 512, 0);
  const listed = execFileSync('cpio', ['-itv', '--quiet', '--numeric-uid-gid'], { input: archive }).toString().trim().split('\n');
  assert.equal(listed.map((l) => l.split(/\s+/)[0]), ['drwxr-xr-x', '-rwsr-xr-x', 'lrwxrwxrwx', 'drwxr-xr-x', 'crw-------', '-rw-r--r--']);
  assert.match(listed[1]!, /\s12\s+34\s+18\s.*bin\/tool$/);
  assert.match(listed[2]!, /bin\/sh -> tool$/);
  assert.match(listed[4]!, /\s5,\s+1\s.*dev\/console$/);
  assert.match(listed[5]!, /odd name ünïcode$/);
  if (!root) return;
  const out = join(tmp.path, 'gnu-extract');
  mkdirSync(out);
  execFileSync('cpio', ['-idm', '--quiet', '--no-absolute-filenames'], { input: archive, cwd: out });
  assert.is(readFileSync(join(out, 'bin/tool'), 'utf8'), '#!/bin/sh\necho hi\n');
  assert.equal(listTree(out).get('bin/tool'), { type: 'file', uid: 12, gid: 34, mode: 0o4755 });
  assert.is(lstatSync(join(out, 'bin/tool')).mtimeMs, 1_000_000_000);
});

test('GNU cpio -H newc output is unpacked by our reader: hard links, devices, owners, modes, symlinks, mtimes', async () => {
  if (!root || !havePeer('cpio')) return;
  const src = join(tmp.path, 'src');
  mkdirSync(join(src, 'd/sub'), { recursive: true });
  writeFileSync(join(src, 'd/a'), 'shared');
  linkSync(join(src, 'd/a'), join(src, 'd/sub/b'));
  writeFileSync(join(src, 'empty1'), '');
  linkSync(join(src, 'empty1'), join(src, 'empty2'));
  symlinkSync('/abs/target', join(src, 'link'));
  execFileSync('mknod', ['-m', '640', join(src, 'null'), 'c', '1', '3']);
  execFileSync('mkfifo', [join(src, 'fifo')]);
  chownSync(join(src, 'd/sub'), 7, 8);
  execFileSync('chmod', ['0700', join(src, 'd/sub')]);
  const archive = join(tmp.path, 'gnu.cpio');
  execFileSync('sh', ['-c', `cd '${src}' && find . -mindepth 1 | cpio -o -H newc --quiet > '${archive}'`]);
  const out = join(tmp.path, 'ours');
  mkdirSync(out);
  const { entries } = await extractUpper(archive, out, { owners: true });
  assert.is(entries, 9);
  assert.equal(listTree(out), listTree(src));
  assert.is(lstatSync(join(out, 'd/a')).ino, lstatSync(join(out, 'd/sub/b')).ino);
  assert.is(lstatSync(join(out, 'empty1')).ino, lstatSync(join(out, 'empty2')).ino);
  assert.is(readFileSync(join(out, 'd/sub/b'), 'utf8'), 'shared');
  assert.is(lstatSync(join(out, 'd/sub')).mtimeMs, Math.floor(lstatSync(join(src, 'd/sub')).mtimeMs / 1000) * 1000);
});

test('a hostile archive from the guest cannot write through a symlink or read the host through one', async () => {
  const outside = join(tmp.path, 'outside');
  mkdirSync(outside);
  const evil = join(tmp.path, 'evil.cpio');
  writeFileSync(evil, writeNewc([
    { name: 'a', mode: S_IFLNK | 0o777, data: Buffer.from(outside) },
    { name: 'a/x', mode: S_IFREG | 0o644, data: Buffer.from('pwned') },
  ]));
  const dest = join(tmp.path, 'evil-dest');
  mkdirSync(dest);
  await rejects(() => extractUpper(evil, dest, { owners: false }), /refusing 'a\/x' in the upper dir archive: 'a' is not a directory/);
  assert.equal(readdirSync(outside), []);
  const dirOverLink = join(tmp.path, 'evil2.cpio');
  writeFileSync(dirOverLink, writeNewc([
    { name: 'a', mode: S_IFLNK | 0o777, data: Buffer.from(outside) },
    { name: 'a', mode: S_IFDIR | 0o777 },
  ]));
  const dest2 = join(tmp.path, 'evil-dest2');
  mkdirSync(dest2);
  await rejects(() => extractUpper(dirOverLink, dest2, { owners: false }), /EEXIST/);
  assert.is(lstatSync(outside).mode & 0o777, 0o755);
  const linked = join(tmp.path, 'linked.cpio');
  symlinkSync(evil, linked);
  await rejects(() => extractUpper(linked, join(tmp.path, 'evil-dest'), { owners: false }), /ELOOP/);
});

test('names from the guest that leave the upper dir are refused', () => {
  assert.is(checkMemberName('./etc/passwd'), 'etc/passwd');
  assert.is(checkMemberName('.'), undefined);
  for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a//b']) assert.throws(() => checkMemberName(bad), /unsafe name/);
});

test('the kernel and its modules: dependencies from modules.dep, loaded dependencies first', () => {
  const index = parseModulesDep('kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/jbd2/jbd2.ko.xz\nkernel/lib/crc16.ko.xz:\nkernel/fs/jbd2/jbd2.ko.xz: kernel/lib/crc16.ko.xz\nkernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko\nkernel/net/9p/9pnet.ko:\n');
  assert.equal(resolveModules(index, ['ext4', '9p']).map((m) => m.name), ['crc16', 'jbd2', 'ext4', '9pnet', '9p']);
  assert.equal(resolveModules(index, ['ext4'], new Set(['crc16'])).map((m) => m.file), ['kernel/fs/jbd2/jbd2.ko.xz', 'kernel/fs/ext4/ext4.ko.xz']);
  assert.throws(() => resolveModules(index, ['nosuch']), /'nosuch' \(needed by the vm sandbox\) is not in modules.dep/);
  if (!havePeer('qemu-system-x86_64')) return;
  // The installed Debian kernel
  const k = findKernel();
  const order = resolveModules(loadModuleIndex(k.modulesDir), GUEST_MODULES).map((m) => m.name);
  for (const [dep, mod] of [['virtio_ring', 'virtio'], ['virtio', 'virtio_pci'], ['netfs', '9p'], ['9pnet', '9pnet_virtio'], ['jbd2', 'ext4'], ['mbcache', 'ext4'], ['crc16', 'ext4']] as const) {
    assert.ok(order.indexOf(dep) >= 0 && order.indexOf(dep) < order.indexOf(mod), `${dep} before ${mod}: ${order.join(' ')}`);
  }
  assert.throws(() => findKernel(join(tmp.path, 'vmlinuz-0.0')), /does not exist/);
});

test('compressed modules (.ko.xz, .ko.zst, .ko.gz) are decompressed for busybox insmod', async () => {
  const original = Buffer.from('\x7fELF' + 'module bytes '.repeat(1000));
  const ko = join(tmp.path, 'm.ko');
  writeFileSync(ko, original);
  for (const [tool, ext] of [['xz', 'xz'], ['zstd', 'zst'], ['gzip', 'gz']] as const) {
    if (!havePeer(tool)) continue;
    execFileSync(tool, ['-k', '-q', '-f', ko]);
    assert.ok((await readModule(`${ko}.${ext}`)).equals(original), ext);
  }
  assert.ok((await readModule(ko)).equals(original));
});

test('the initrd key follows its inputs', async () => {
  if (!havePeer('qemu-system-x86_64') || !havePeer('busybox')) return;
  const k = findKernel();
  const a = await planInitrd({ kernel: k });
  const b = await planInitrd({ kernel: k });
  assert.is(a.key, b.key);
  const fewer = await planInitrd({ kernel: k, modules: ['overlay'] });
  assert.is.not(fewer.key, a.key);
  assert.equal(fewer.moduleOrder, ['overlay']);
  assert.ok(a.members.some((m) => m.name === 'init'));
  assert.ok(a.members.some((m) => m.name === 'lib/modules/ext4.ko'));
});

test('the job files quote everything the script gets', () => {
  assert.is(shQuote("it's"), `'it'\\''s'`);
  const files = renderJob({ storeDir: '/nix/store', lowers: ['tree', 'tar'], hostname: 'localhost', network: false, env: { A: "x'y z", EMPTY: '' } });
  assert.is(files['run.sh'], `exec /bin/env -i 'A=x'\\''y z' 'EMPTY=' /bin/chroot /mnt /tmp/.fetch-image-script\n`);
  const out = spawnSync('sh', ['-c', `${files['job.sh']}\nprintf '%s|' "$STORE_DIR" "$LOWER_FORMS" "$NETWORK"`], { encoding: 'utf8' }).stdout;
  assert.is(out, '/nix/store|tree tar|0|');
  assert.throws(() => renderJob({ storeDir: '/nix/store', lowers: [], hostname: 'h', network: false, env: { 'A=B': '1' } }), /'A=B' cannot be passed/);
  assert.throws(() => renderJob({ storeDir: '/nix/st ore', lowers: [], hostname: 'h', network: false, env: {} }), /store dir/);
});

test('QEMU arguments: TCG with -cpu max, KVM with -cpu host, shares on PCI bridges, no NIC without network', () => {
  const base = { kernel: '/k', initrd: '/i', memoryMiB: 512, mode: 'run' as const, network: false };
  const tcg = qemuArgs({ ...base, accel: 'tcg', shares: [{ tag: 'store', path: '/a,b', readonly: true }] });
  assert.ok(tcg.join(' ').includes('-accel tcg -cpu max'));
  assert.ok(tcg.includes('local,id=fs0,path=/a,,b,security_model=none,readonly=on'));
  assert.ok(tcg.join(' ').includes('-nic none'));
  const many = qemuArgs({ ...base, accel: 'kvm', network: true, shares: Array.from({ length: 40 }, (_, i) => ({ tag: `lower${i}`, path: `/l${i}`, readonly: true })) });
  assert.ok(many.join(' ').includes('-accel kvm -cpu host'));
  assert.ok(many.join(' ').includes('user,model=virtio-net-pci'));
  assert.equal(many.filter((a) => a.startsWith('pci-bridge')), ['pci-bridge,id=br0,chassis_nr=1', 'pci-bridge,id=br1,chassis_nr=2']);
  assert.ok(many.includes('virtio-9p-pci,fsdev=fs31,mount_tag=lower31,bus=br1,addr=1'));
});

test('KVM probe: a fake device that is no KVM device falls back to TCG, the answer is cached per boot', async () => {
  if (!havePeer('qemu-system-x86_64')) return;
  const k = findKernel();
  const cacheFile = join(tmp.path, 'cache', 'kvm-probe.json');
  const initrd = join(tmp.path, 'initrd');
  writeFileSync(initrd, '');
  const plain = join(tmp.path, 'fake-kvm-file');
  writeFileSync(plain, '');
  const a = await probeKvm({ kernel: k.image, initrd, device: plain, cacheFile, bootId: 'boot-1' });
  assert.equal(a, { accel: 'tcg', reason: `${plain} is not a character device`, cached: false });
  assert.equal((await probeKvm({ kernel: k.image, initrd, device: plain, cacheFile, bootId: 'boot-1' })).cached, true);
  assert.is((await probeKvm({ kernel: k.image, initrd, device: plain, cacheFile, bootId: 'boot-2' })).cached, false);
  if (!root || !havePeer('unshare')) return;
  // A character device that does not answer KVM's ioctls (the numbers of /dev/null), put over
  // /dev/kvm for the probe boot: QEMU fails and the probe says TCG.
  const fake = join(tmp.path, 'fake-kvm');
  execFileSync('mknod', ['-m', '666', fake, 'c', '1', '3']);
  const t0 = Date.now();
  const b = await probeKvm({ kernel: k.image, initrd, device: fake, cacheFile, bootId: 'boot-1' });
  assert.is(b.accel, 'tcg');
  assert.match(b.reason, /^QEMU could not use KVM: .*kvm/i);
  assert.ok(Date.now() - t0 < 4000, 'failed without waiting for the timeout');
  // answers from other boots (boot-2) are dropped when this boot's are written
  const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as { device: string; bootId: string }[];
  assert.equal(cached.map((r) => [r.bootId, r.device]), [['boot-1', fake]]);
});

test('KVM probe on this machine: /dev/kvm exists but a KVM guest never boots → TCG after the short timeout', async () => {
  if (!root || !havePeer('qemu-system-x86_64')) return;
  const { ensureInitrd } = await import('../lib/sandbox/vm/initrd.js');
  const k = findKernel();
  const initrd = await ensureInitrd({ kernel: k }, { real: join(tmp.path, 'no-store'), logical: '/nix/store' });
  try {
    const cacheFile = join(tmp.path, 'cache-real', 'kvm-probe.json');
    const t0 = Date.now();
    const a = await probeKvm({ kernel: k.image, initrd: initrd.path, cacheFile, timeoutMs: 3000 });
    const took = Date.now() - t0;
    console.log(`  KVM probe: ${a.accel} (${a.reason}) in ${took} ms`);
    if (a.accel === 'kvm') {
      assert.match(a.reason, /booted in \d+ ms/); // a machine where nested virtualisation works
    } else {
      assert.match(a.reason, /did not boot within 3 s|not readable|does not exist|could not use KVM/);
    }
    const again = await probeKvm({ kernel: k.image, initrd: initrd.path, cacheFile });
    assert.equal(again, { ...a, cached: true });
  } finally {
    initrd.dispose();
  }
});

test('an explicit kernel without its modules is refused with what to do', async () => {
  const fake = join(tmp.path, 'vmlinuz-9.9.9-test');
  writeFileSync(fake, '');
  await rejects(async () => findKernel(fake), /no modules at \/lib\/modules\/9\.9\.9-test/);
});

test.after(() => tmp.remove());

test.run();
