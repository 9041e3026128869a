// Local copyToRoot paths become recursive fixed outputs (`store add` semantics). Their store path
// is the hash of their NAR, so an unchanged spec would re-hash every file on each run; a tree
// fingerprint (names, types, modes, sizes, inodes, mtimes, ctimes) remembers the path instead.
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { hashPath } from '../nar/index.js';
import { makeFixedOutputPath, writeFileAtomic, type LocalStore } from '../store/index.js';

/** A digest of every entry's metadata under `src`: any change to the tree changes it. */
export function treeFingerprint(src: string): string {
  const h = createHash('sha256');
  const visit = (p: string, rel: string) => {
    const st = lstatSync(p, { bigint: true });
    h.update(`${rel}\0${st.mode}\0${st.size}\0${st.ino}\0${st.dev}\0${st.mtimeNs}\0${st.ctimeNs}\n`);
    if (st.isDirectory()) for (const name of readdirSync(p).sort()) visit(join(p, name), `${rel}/${name}`);
  };
  visit(src, '');
  return h.digest('hex');
}

function cacheFile(store: LocalStore, src: string): string {
  return join(store.root, 'nix', 'var', 'fetch-image', 'local-inputs', `${createHash('sha256').update(src).digest('hex')}.json`);
}

export interface LocalInput {
  storePath: string;
  /** The fingerprint the path was computed for, to remember once the path is added. */
  fingerprint: string;
  /** Whether the path is valid already (nothing to add). */
  valid: boolean;
}

/** The store path `store add SRC --name NAME` would give, without adding anything (with `cachedOnly`, only if remembered). */
export async function localInputPath(store: LocalStore, src: string, name: string, cachedOnly = false): Promise<LocalInput | undefined> {
  const fingerprint = treeFingerprint(src);
  try {
    const c = JSON.parse(readFileSync(cacheFile(store, src), 'utf8')) as { fingerprint: string; storePath: string };
    if (c.fingerprint === fingerprint && store.isValid(c.storePath)) return { storePath: c.storePath, fingerprint, valid: true };
  } catch {
    // not seen before
  }
  if (cachedOnly) return undefined;
  const { hash } = await hashPath(src);
  const storePath = makeFixedOutputPath('recursive', hash, name, { storeDir: store.storeDir });
  return { storePath, fingerprint, valid: store.isValid(storePath) };
}

/** Adds SRC (if its path is not valid yet) and remembers its fingerprint. */
export async function addLocalInput(store: LocalStore, src: string, name: string, planned: LocalInput): Promise<string> {
  let storePath = planned.storePath;
  if (!store.isValid(storePath)) storePath = (await store.addPath(src, { name, method: 'recursive' })).path;
  if (storePath !== planned.storePath) throw new Error(`${src} changed while the build was being planned (its store path is now ${storePath}); run the build again`);
  const file = cacheFile(store, src);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileAtomic(file, JSON.stringify({ fingerprint: planned.fingerprint, storePath }) + '\n');
  return storePath;
}
