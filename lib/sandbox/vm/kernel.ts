import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { SandboxError } from '../types.js';

/**
 * The guest's kernel modules, by module name. The Debian kernel builds all of these as modules:
 * virtio PCI transport, 9p over virtio (store, lower dirs, exchange), overlayfs, virtio-blk +
 * ext4 (the upper dir's disk) and virtio-net (only used with `network`). crc32c_generic is
 * listed because ext4 asks the crypto API for "crc32c" at mount time, a soft dependency that
 * modules.dep does not record and that nothing in the initrd could load on demand.
 */
export const GUEST_MODULES: readonly string[] = [
  'virtio_pci', '9pnet_virtio', '9p', 'overlay', 'virtio_blk', 'crc32c_generic', 'ext4', 'virtio_net',
];

export interface Kernel {
  image: string;          // the bzImage to boot
  version: string;        // e.g. 6.1.0-57-amd64
  modulesDir: string;     // /lib/modules/<version>
}

/** `vmlinuz-<version>` → version, or undefined for other names. */
export function kernelVersionOf(image: string): string | undefined {
  const m = /^vmlinuz-(.+)$/.exec(basename(image));
  return m ? m[1] : undefined;
}

/** Compares Debian kernel versions like `6.1.0-57-amd64` numerically, part by part. */
export function compareKernelVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    const c = !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return c;
  }
  return 0;
}

/**
 * The kernel to boot: `explicit` when given (its modules must be under
 * `<modulesRoot>/<version>`, the version read from the `vmlinuz-<version>` name), else the newest
 * /boot/vmlinuz-* that has its modules installed.
 */
export function findKernel(explicit?: string, opts: { bootDir?: string; modulesRoot?: string } = {}): Kernel {
  const bootDir = opts.bootDir ?? '/boot';
  const modulesRoot = opts.modulesRoot ?? '/lib/modules';
  if (explicit) {
    if (!existsSync(explicit)) throw new SandboxError(`kernel '${explicit}' does not exist (give a /boot/vmlinuz-<version> file)`);
    const version = kernelVersionOf(explicit);
    if (!version) throw new SandboxError(`kernel '${explicit}': cannot tell its version (expected a name like vmlinuz-6.1.0-57-amd64)`);
    const modulesDir = join(modulesRoot, version);
    if (!existsSync(join(modulesDir, 'modules.dep'))) throw new SandboxError(`kernel '${explicit}': no modules at ${modulesDir} (install the matching linux-image package)`);
    return { image: explicit, version, modulesDir };
  }
  const found = (existsSync(bootDir) ? readdirSync(bootDir) : [])
    .map((n) => ({ n, v: kernelVersionOf(n) }))
    .filter((k): k is { n: string; v: string } => k.v !== undefined && existsSync(join(modulesRoot, k.v, 'modules.dep')))
    .sort((a, b) => compareKernelVersions(b.v, a.v));
  const best = found[0];
  if (!best) throw new SandboxError(`no kernel for the vm sandbox: no ${bootDir}/vmlinuz-* with modules under ${modulesRoot} (apt-get install linux-image-amd64, or give --kernel)`);
  return { image: join(bootDir, best.n), version: best.v, modulesDir: join(modulesRoot, best.v) };
}

/** modules.dep parsed: module name → { file relative to the modules dir, its direct deps' names }. */
export type ModuleIndex = Map<string, { file: string; deps: string[] }>;

/** The module name of a path like kernel/fs/9p/9p.ko.xz; the kernel treats '-' and '_' alike. */
export function moduleName(file: string): string {
  return basename(file).replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

export function parseModulesDep(text: string): ModuleIndex {
  const index: ModuleIndex = new Map();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const file = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean).map(moduleName);
    index.set(moduleName(file), { file, deps });
  }
  return index;
}

/**
 * `wanted` and everything they depend on, in an order insmod can load them (dependencies
 * first), each once. Modules built into the kernel (`builtin`) are skipped.
 */
export function resolveModules(index: ModuleIndex, wanted: readonly string[], builtin: ReadonlySet<string> = new Set()): { name: string; file: string }[] {
  const out: { name: string; file: string }[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (raw: string, from: string): void => {
    const name = raw.replace(/-/g, '_');
    if (state.get(name) === 'done' || builtin.has(name)) return;
    if (state.get(name) === 'visiting') throw new SandboxError(`kernel modules: dependency cycle through '${name}'`);
    const entry = index.get(name);
    if (!entry) throw new SandboxError(`kernel module '${name}' (needed by ${from}) is not in modules.dep`);
    state.set(name, 'visiting');
    for (const d of entry.deps) visit(d, name);
    state.set(name, 'done');
    out.push({ name, file: entry.file });
  };
  for (const w of wanted) visit(w, 'the vm sandbox');
  return out;
}

/** Names of the modules built into the kernel (modules.builtin), which need no loading. */
export function builtinModules(modulesDir: string): Set<string> {
  const file = join(modulesDir, 'modules.builtin');
  if (!existsSync(file)) return new Set();
  return new Set(readFileSync(file, 'utf8').split('\n').filter(Boolean).map(moduleName));
}

export function loadModuleIndex(modulesDir: string): ModuleIndex {
  return parseModulesDep(readFileSync(join(modulesDir, 'modules.dep'), 'utf8'));
}
