import { createHash } from 'node:crypto';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Decompress } from 'fzstd';
import { Hash } from '../../hash/index.js';
import { LocalStore, makeStorePath } from '../../store/index.js';
import { S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, writeNewc, type CpioMember } from './cpio.js';
import { GUEST_SCRIPTS } from './guest-init.js';
import { GUEST_MODULES, builtinModules, loadModuleIndex, resolveModules, type Kernel } from './kernel.js';
import { SandboxError } from '../types.js';

/** Bumped when the initrd's layout changes in a way the other key parts do not show. */
const INITRD_FORMAT = 1;
export const BUSYBOX = '/bin/busybox';

export interface InitrdInputs {
  kernel: Kernel;
  busybox?: string;
  modules?: readonly string[];
}

/** The contents of one module file, decompressed (busybox insmod reads plain .ko only). */
export async function readModule(path: string): Promise<Buffer> {
  const raw = readFileSync(path);
  if (path.endsWith('.ko')) return raw;
  if (path.endsWith('.ko.zst')) {
    const parts: Uint8Array[] = [];
    const d = new Decompress((chunk) => parts.push(chunk.slice()));
    d.push(raw, true);
    return Buffer.concat(parts);
  }
  if (path.endsWith('.ko.xz')) return unxz(raw);
  if (path.endsWith('.ko.gz')) return gunzipSync(raw);
  throw new SandboxError(`kernel module '${path}': unknown compression`);
}

// Loaded on first use: Debian's modules are plain .ko, and the addon costs start-up time.
async function unxz(raw: Buffer): Promise<Buffer> {
  const { createDecompressor } = await import('lzma-native');
  const parts: Buffer[] = [];
  for await (const chunk of Readable.from([raw]).pipe(createDecompressor())) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

export interface InitrdPlan {
  members: CpioMember[];
  key: string;            // sha256 (hex) of everything that went in
  moduleOrder: string[];
}

const dir = (name: string): CpioMember => ({ name, mode: S_IFDIR | 0o755 });

/** Everything that goes into the initrd, and the key that names it. */
export async function planInitrd(inputs: InitrdInputs): Promise<InitrdPlan> {
  const { kernel } = inputs;
  const busyboxPath = inputs.busybox ?? BUSYBOX;
  try {
    accessSync(busyboxPath, constants.R_OK);
  } catch {
    throw new SandboxError(`vm sandbox: no static busybox at ${busyboxPath} (apt-get install busybox-static)`);
  }
  const busybox = readFileSync(busyboxPath);
  const mods = resolveModules(loadModuleIndex(kernel.modulesDir), inputs.modules ?? GUEST_MODULES, builtinModules(kernel.modulesDir));
  const key = createHash('sha256');
  const add = (label: string, data: string | Uint8Array): void => {
    key.update(`${label}\0${createHash('sha256').update(data).digest('hex')}\0`);
  };
  add('format', String(INITRD_FORMAT));
  add('kernel', kernel.version);
  add('busybox', busybox);
  const members: CpioMember[] = ['bin', 'dev', 'etc', 'etc/fetch-image', 'lib', 'lib/modules', 'mnt', 'proc', 'run', 'sys', 'tmp', 'xchg'].map(dir);
  members.push({ name: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 });
  members.push({ name: 'bin/busybox', mode: S_IFREG | 0o755, data: busybox });
  members.push({ name: 'bin/sh', mode: S_IFLNK | 0o777, data: Buffer.from('busybox') });
  for (const [name, text] of Object.entries(GUEST_SCRIPTS)) {
    add(`script ${name}`, text);
    members.push({ name, mode: S_IFREG | 0o755, data: Buffer.from(text) });
  }
  for (const m of mods) {
    const data = await readModule(join(kernel.modulesDir, m.file));
    add(`module ${m.name}`, data);
    members.push({ name: `lib/modules/${m.name}.ko`, mode: S_IFREG | 0o644, data });
  }
  const order = mods.map((m) => m.name);
  members.push({ name: 'etc/fetch-image/modules', mode: S_IFREG | 0o644, data: Buffer.from(order.join('\n') + '\n') });
  return { members, key: key.digest('hex'), moduleOrder: order };
}

/** The initrd image: a gzip-compressed newc archive (the kernel's initramfs format). */
export function buildInitrd(plan: InitrdPlan): Buffer {
  return gzipSync(writeNewc(plan.members), { level: 6 });
}

/** The input-addressed store path of the initrd for `plan`. */
export function initrdStorePath(plan: InitrdPlan, kernel: Kernel, storeDir: string): string {
  const hash = new Hash('sha256', Buffer.from(plan.key, 'hex'));
  return makeStorePath('output:out', hash, `fetch-image-vm-initrd-${kernel.version}`.replace(/[^A-Za-z0-9+\-._?=]/g, '-'), storeDir);
}

/** Where the store at `storeDir` keeps its files, when it is a LocalStore laid out as usual. */
export function localStoreOf(storeDir: { real: string; logical: string }): LocalStore | undefined {
  const real = storeDir.real.replace(/\/+$/, '');
  const logical = storeDir.logical.replace(/\/+$/, '');
  if (!real.endsWith(logical)) return undefined;
  try {
    return new LocalStore({ root: real.slice(0, real.length - logical.length) || '/', storeDir: logical });
  } catch {
    return undefined;
  }
}

export interface ResolvedInitrd {
  path: string;            // real file to pass to -initrd
  storePath?: string;      // when cached in the store
  built: boolean;          // false: found in the store
  dispose: () => void;     // removes a private (uncached) copy
}

/**
 * The initrd for `kernel`, built once and kept in the store as an input-addressed path; a caller
 * that cannot write the store (a non-root user of a root-owned store) gets a private copy that
 * `dispose` removes.
 */
export async function ensureInitrd(inputs: InitrdInputs, storeDir: { real: string; logical: string }): Promise<ResolvedInitrd> {
  const plan = await planInitrd(inputs);
  const store = localStoreOf(storeDir);
  if (store) {
    const storePath = initrdStorePath(plan, inputs.kernel, store.storeDir);
    const real = store.realPath(storePath);
    if (store.isValid(storePath)) return { path: real, storePath, built: false, dispose: () => undefined };
    if (canWrite(store)) {
      const lock = await store.lockPath(storePath);
      try {
        if (!store.isValid(storePath)) {
          const tmp = store.makeTempDir('initrd');
          try {
            writeFileSync(join(tmp, 'out'), buildInitrd(plan));
            await store.register(storePath, join(tmp, 'out'));
          } finally {
            rmSync(tmp, { recursive: true, force: true });
          }
          return { path: real, storePath, built: true, dispose: () => undefined };
        }
        return { path: real, storePath, built: false, dispose: () => undefined };
      } finally {
        lock.release();
      }
    }
  }
  const tmp = mkdtempSync(join(tmpdir(), 'fetch-image-initrd-'));
  const path = join(tmp, 'initrd.gz');
  writeFileSync(path, buildInitrd(plan));
  return { path, built: true, dispose: () => rmSync(tmp, { recursive: true, force: true }) };
}

function canWrite(store: LocalStore): boolean {
  try {
    accessSync(store.physicalStoreDir, constants.W_OK);
    const probe = store.makeTempDir('initrd-probe');
    rmSync(probe, { recursive: true, force: true });
    return true;
  } catch {
    return false;
  }
}
