// A real, writable copy of the merged copyToRoot tree, for extraCommands to change: entries are
// merged in order like nixpkgs' `rsync -a` (later entries win), with copies of every file —
// never hard links, so a script cannot change a store path through the copy.
import { chmodSync, copyFileSync, constants, lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { RootConflictError } from './merge.js';

export interface MaterialiseSource {
  /** Real directory whose contents are merged. */
  dir: string;
  /** For errors, e.g. `copyToRoot[1] (/nix/store/…-hello)`. */
  label: string;
}

const kind = (st: Stats) => (st.isDirectory() ? 'a directory' : st.isSymbolicLink() ? 'a symlink' : 'a file');

/** Where a directory symlink at `link` (inside `root`) points, kept inside `root`. */
function dirlinkTarget(root: string, link: string): string | undefined {
  const target = readlinkSync(link);
  const abs = isAbsolute(target) ? join(root, target) : resolve(dirname(link), target);
  if (relative(root, abs).startsWith('..')) return undefined;
  try {
    return statSync(abs).isDirectory() ? abs : undefined;
  } catch {
    return undefined;
  }
}

function copyEntry(src: string, dest: string, st: Stats): void {
  if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dest);
  else if (st.isFile()) {
    copyFileSync(src, dest, constants.COPYFILE_FICLONE);
    chmodSync(dest, st.mode & 0o7777);
  } else throw new RootConflictError(`${src}: unsupported file type (only files, directories and symlinks can be copied to the root)`);
}

/**
 * Merges `sources` into `root` (an existing empty directory). A directory meeting a file is an
 * error naming both sources; with `keepContentsDirlinks` a directory symlink already in place
 * stays a symlink and the later directory's content goes through it (rsync -K).
 */
export function materialiseRoots(root: string, sources: readonly MaterialiseSource[], keepContentsDirlinks: boolean): void {
  const owner = new Map<string, string>();
  // Directories stay writable while merging and get their own mode at the end (store ones are 0555).
  const dirModes = new Map<string, number>();
  const merge = (srcDir: string, destDir: string, rel: string, label: string) => {
    for (const name of readdirSync(srcDir).sort()) {
      const src = join(srcDir, name);
      const dest = join(destDir, name);
      const relName = rel ? `${rel}/${name}` : name;
      const st = lstatSync(src);
      const have = lstatSync(dest, { throwIfNoEntry: false });
      if (!have) {
        if (st.isDirectory()) {
          mkdirSync(dest, 0o755);
          dirModes.set(dest, st.mode & 0o7777);
          merge(src, dest, relName, label);
        } else copyEntry(src, dest, st);
        owner.set(relName, label);
        continue;
      }
      if (st.isDirectory()) {
        if (have.isDirectory()) {
          dirModes.set(dest, st.mode & 0o7777); // rsync -a: the later entry's mode wins
          merge(src, dest, relName, label);
          continue;
        }
        const through = have.isSymbolicLink() && keepContentsDirlinks ? dirlinkTarget(root, dest) : undefined;
        if (through) {
          merge(src, through, relName, label);
          continue;
        }
        if (!have.isSymbolicLink()) {
          throw new RootConflictError(`/${relName} is a directory in ${label} but ${kind(have)} in ${owner.get(relName) ?? 'an earlier entry'}`);
        }
        // rsync -a without -K: the directory replaces the symlink.
        rmSync(dest);
        mkdirSync(dest, 0o755);
        dirModes.set(dest, st.mode & 0o7777);
        merge(src, dest, relName, label);
      } else {
        if (have.isDirectory()) throw new RootConflictError(`/${relName} is ${kind(st)} in ${label} but a directory in ${owner.get(relName) ?? 'an earlier entry'}`);
        rmSync(dest);
        copyEntry(src, dest, st);
      }
      owner.set(relName, label);
    }
  };
  for (const s of sources) merge(s.dir, root, '', s.label);
  for (const [dir, mode] of dirModes) chmodSync(dir, mode);
}
