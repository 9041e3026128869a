import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, lstatSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Root file system helpers for the runAsRoot sandbox tests. */

/** busybox-static and applet links under `root` (/bin/sh and friends). */
export function busyboxRoot(root: string): void {
  mkdirSync(join(root, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  const applets = execFileSync('/bin/busybox', ['--list']).toString().split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', join(root, 'bin', a));
}

/** Copies host programs and the shared libraries ldd lists for them to the same paths under `root`. */
export function hostPrograms(root: string, programs: string[]): void {
  const files = new Set(programs);
  for (const p of programs) {
    for (const line of execFileSync('ldd', [p]).toString().split('\n')) {
      const m = /(\/\S+) \(0x/.exec(line);
      if (m?.[1]) files.add(m[1]);
    }
  }
  for (const f of files) {
    mkdirSync(join(root, dirname(f)), { recursive: true });
    copyFileSync(f, join(root, f)); // follows links: the lower holds real files
    chmodSync(join(root, f), 0o755);
  }
}

/** `tar` of a directory's contents, numeric owners, as a layer. */
export function tarLayer(dir: string, out: string): string {
  execFileSync('tar', ['--numeric-owner', '-C', dir, '-cf', out, '.']);
  return out;
}

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'other';
  uid: number;
  gid: number;
  mode: number;
  rdev?: string;
  target?: string;
}

/** Every entry below `root`, keyed by its relative path. */
export function listTree(root: string): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, path));
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char'
        : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'other';
      const e: TreeEntry = { type, uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
      if (type === 'char' || type === 'block') e.rdev = `${Math.floor(st.rdev / 256)},${st.rdev % 256}`;
      if (type === 'symlink') e.target = readlinkSync(join(root, path));
      out.set(path, e);
      if (type === 'dir') walk(path);
    }
  };
  walk('');
  return out;
}

/** Writes `files` (path → content) below root, making parents. */
export function writeTree(root: string, files: Record<string, string>): void {
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), content);
  }
}
