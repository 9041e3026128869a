// Shared by the mirror tests: a small closure with every kind of path, store snapshots, NAR bytes.
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hash, hashFile } from '../lib/hash/index.js';
import { dumpPath, encodeStr, hashPath } from '../lib/nar/index.js';
import { LocalStore, contentAddress, makeFixedOutputPath, makeStorePath } from '../lib/store/index.js';

export interface Closure {
  /** Content-addressed (recursive sha256) directory, no references. */
  dep: string;
  /** Text path referring to dep. */
  note: string;
  /** Input-addressed path referring to dep, note and itself: only a signature can vouch for it. */
  top: string;
  /** Flat fixed-output file. */
  flat: string;
}

/**
 * Adds a path whose content `make` writes, as `nix-store --add-fixed [--recursive] sha256`
 * would name it. The content is made in the store's temp area and registered in place (not
 * copied through LocalStore.addPath), so the fixture does not depend on that copy.
 */
async function addMade(store: LocalStore, name: string, method: 'flat' | 'recursive', make: (out: string) => void): Promise<string> {
  const tmp = store.makeTempDir('fixture');
  const out = join(tmp, 'out');
  make(out);
  const nar = await hashPath(out);
  const ca = method === 'flat' ? await hashFile(out) : nar.hash;
  const path = makeFixedOutputPath(method, ca, name, { storeDir: store.storeDir });
  const lock = await store.lockPath(path);
  try {
    await store.register(path, out, { narHash: nar.hash, narSize: nar.size, ca: contentAddress(method, ca) });
  } finally {
    lock.release();
  }
  return path;
}

/** Builds the closure inside `store`. */
export async function makeClosure(store: LocalStore, work: string, bigBytes = 300_000): Promise<Closure> {
  const dep = await addMade(store, 'dep', 'recursive', (src) => {
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'hello'), 'Hello World\n');
    writeFileSync(join(src, 'sub', 'big'), Buffer.alloc(bigBytes, 'abcdefgh'));
    writeFileSync(join(src, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    symlinkSync('hello', join(src, 'link'));
  });
  const note = await store.addText('note.txt', `see ${dep}\n`, [dep]);
  const flat = await addMade(store, 'flat.bin', 'flat', (f) => writeFileSync(f, Buffer.alloc(50_000, 7)));
  const top = makeStorePath('output:out', Hash.of('sha256', `fake derivation ${work}`), 'top', store.storeDir);
  const tmp = store.makeTempDir('fixture');
  const out = join(tmp, 'out');
  mkdirSync(join(out, 'bin'), { recursive: true });
  writeFileSync(join(out, 'bin', 'refs'), `${dep}\n${note}\n${top}\n`);
  const lock = await store.lockPath(top);
  try {
    await store.register(top, out, { references: [dep, note, top] });
  } finally {
    lock.release();
  }
  return { dep, note, top, flat };
}

/** Everything that says what a store holds: its metadata and the names in its store dir. */
export function snapshot(store: LocalStore): string {
  return JSON.stringify({ infos: store.list(), files: readdirSync(store.physicalStoreDir).sort() });
}

/** The NAR of a real path, gathered. */
export async function narBytes(path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of dumpPath(path)) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** A NAR of a directory holding one entry named `name` (which a valid NAR never has for `..`). */
export function hostileNar(name: string): Buffer {
  const s = (x: string) => encodeStr(x);
  return Buffer.concat([
    s('nix-archive-1'), s('('), s('type'), s('directory'),
    s('entry'), s('('), s('name'), s(name), s('node'),
    s('('), s('type'), s('regular'), s('contents'), s('pwned\n'), s(')'),
    s(')'), s(')'),
  ]);
}
