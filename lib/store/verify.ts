// `store verify`, as `nix-store --verify [--check-contents]` reports: registered paths whose
// content is missing, records that cannot be read, content with no record (orphans), references
// to paths that are not valid; with checkContents also every NAR hash and content address.
import { createHash } from 'node:crypto';
import { Hash, parseHash } from '../hash/index.js';
import { dumpPath } from '../nar/index.js';
import { hashForContentAddress, parseContentAddress, pathForContentAddress } from './content-address.js';
import type { LocalStore, PathInfo } from './local-store.js';
import { parseStorePath } from './path.js';

export type ProblemKind =
  | 'missing-content' | 'unreadable-record' | 'orphan' | 'invalid-reference'
  | 'nar-mismatch' | 'ca-mismatch' | 'unreadable-content';

export interface VerifyProblem {
  /** The store path concerned (for a record with neither content nor a readable path: its hash part's path is unknown, see `record`). */
  path: string;
  kind: ProblemKind;
  problem: string;
  /** The metadata file, for unreadable records. */
  record?: string;
  /** The reference that is not valid, for invalid-reference. */
  reference?: string;
}

export interface VerifyOptions {
  checkContents?: boolean;
  onPath?: (p: string) => void;
  /**
   * What the recipe recorded as a path's deriver vouches for, if it is in the store: the content
   * address a fixed output must have (checked like a recorded one with checkContents), or `{}`
   * for an input-addressed path built from it. Undefined: nothing vouches for the path.
   */
  deriverOf?: (info: PathInfo) => { ca?: string } | undefined;
}

export interface VerifyReport {
  /** Valid paths looked at. */
  checked: number;
  problems: VerifyProblem[];
  /** Content addresses hashed against the content and found right (recorded as verified). */
  caVerified: number;
  /**
   * Valid paths with no content address that no stored recipe vouches for (imported from a
   * bundle or a CA-less cache entry): not errors, but they answer no pin until hashed against it.
   */
  unverified: string[];
}

/** What is wrong with a valid path's content: NAR hash, size, content address. */
async function contentProblems(store: LocalStore, info: PathInfo, expectedCa: string | undefined): Promise<{ problems: VerifyProblem[]; verifiedCa?: string }> {
  const real = store.realPath(info.path);
  const h = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of dumpPath(real)) {
      h.update(chunk);
      size += chunk.length;
    }
  } catch (e) {
    return { problems: [{ path: info.path, kind: 'unreadable-content', problem: `its content cannot be read: ${(e as Error).message}` }] };
  }
  const narHash = new Hash('sha256', h.digest());
  const want = parseHash(info.narHash);
  // Content that changed since it was recorded fails its content address too: one line for it is enough.
  if (!narHash.equals(want)) return { problems: [{ path: info.path, kind: 'nar-mismatch', problem: `NAR hash mismatch: recorded ${want.sri}, got ${narHash.sri}` }] };
  if (size !== info.narSize) return { problems: [{ path: info.path, kind: 'nar-mismatch', problem: `NAR size mismatch: recorded ${info.narSize}, got ${size}` }] };
  const caText = info.ca ?? expectedCa;
  if (!caText) return { problems: [] };
  const from = info.ca ? 'its content address' : 'the content address its deriver declares';
  try {
    const ca = parseContentAddress(caText, info.path);
    const { name } = parseStorePath(info.path, store.storeDir);
    const addressed = pathForContentAddress(ca, name, info.references, info.path, store.storeDir);
    if (addressed !== info.path) {
      return { problems: [{ path: info.path, kind: 'ca-mismatch', problem: `${from} ${caText} gives ${addressed}, not this path` }] };
    }
    const got = await hashForContentAddress(ca, real, narHash);
    if (!got.equals(ca.hash)) {
      return { problems: [{ path: info.path, kind: 'ca-mismatch', problem: `content does not match ${from} ${caText}: got ${got.sri}, want ${ca.hash.sri}` }] };
    }
  } catch (e) {
    return { problems: [{ path: info.path, kind: 'ca-mismatch', problem: `${from} cannot be checked: ${(e as Error).message}` }] };
  }
  return { problems: [], verifiedCa: caText };
}

export async function verifyStore(store: LocalStore, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  const entries = new Set(store.storeEntries());
  const byHashPart = new Map([...entries].map((b) => [b.slice(0, 32), b]));
  const recorded = new Set<string>();
  let checked = 0;
  let caVerified = 0;
  const unverified: string[] = [];
  for (const { hashPart, record } of store.records()) {
    if (record.state === 'unreadable') {
      const base = byHashPart.get(hashPart);
      if (base) recorded.add(base);
      const path = base ? `${store.storeDir}/${base}` : `${store.storeDir}/${hashPart}-?`;
      problems.push({ path, kind: 'unreadable-record', problem: `its metadata record ${record.file} is unreadable: ${record.reason}`, record: record.file });
      continue;
    }
    const info = record.info;
    const base = parseStorePath(info.path, store.storeDir).baseName;
    recorded.add(base);
    if (!entries.has(base) && !store.hasContent(info.path)) {
      problems.push({ path: info.path, kind: 'missing-content', problem: `registered, but its content is missing (nothing at ${store.realPath(info.path)})` });
      continue;
    }
    checked++;
    opts.onPath?.(info.path);
    for (const r of info.references) {
      if (r !== info.path && !store.isValid(r)) problems.push({ path: info.path, kind: 'invalid-reference', problem: `refers to ${r}, which is not valid`, reference: r });
    }
    const vouch = info.ca ? undefined : opts.deriverOf?.(info);
    if (!info.ca && !vouch) unverified.push(info.path);
    if (!opts.checkContents) continue;
    const found = await contentProblems(store, info, vouch?.ca);
    problems.push(...found.problems);
    if (found.verifiedCa && !(info.ca && info.caVerified)) {
      store.updateInfo(info.path, { ca: found.verifiedCa, caVerified: true });
      caVerified++;
    }
  }
  for (const base of entries) {
    const path = `${store.storeDir}/${base}`;
    if (recorded.has(base) || store.pathBusy(path)) continue; // a live process may be between moving it in and recording it
    problems.push({ path, kind: 'orphan', problem: `content in the store with no metadata record (orphan at ${store.realPath(path)})` });
  }
  return { checked, problems, caVerified, unverified: unverified.sort() };
}
