// `.narinfo` files (SPEC.md §8, Nix's nar-info.cc): parse strictly, print in Nix's line order.
import { parseHash, type Hash } from '../hash/index.js';
import { DEFAULT_STORE_DIR, isStorePath, parseStorePath } from '../store/index.js';
import { printable } from '../text/index.js';

export interface NarInfo {
  storePath: string;
  /** Relative to the cache root, e.g. `nar/<nix32>.nar.xz`. */
  url: string;
  compression: string;
  fileHash?: Hash;
  fileSize?: number;
  narHash: Hash;
  narSize: number;
  /** Full store paths, sorted. */
  references: string[];
  /** Full store path. */
  deriver?: string;
  system?: string;
  sigs: string[];
  ca?: string;
}

/** The message a binary-cache signature covers. */
export function fingerprint(storePath: string, narHash: Hash, narSize: number, references: readonly string[]): string {
  return `1;${storePath};${narHash.prefixed('nix32')};${narSize};${[...references].sort().join(',')}`;
}

export function narInfoFingerprint(info: NarInfo): string {
  return fingerprint(info.storePath, info.narHash, info.narSize, info.references);
}

const baseName = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

/** The text Nix writes: fixed line order, `References:` always present (even empty). */
export function formatNarInfo(info: NarInfo): string {
  const lines = [`StorePath: ${info.storePath}`, `URL: ${info.url}`, `Compression: ${info.compression}`];
  if (info.fileHash) lines.push(`FileHash: ${info.fileHash.prefixed('nix32')}`);
  if (info.fileSize !== undefined) lines.push(`FileSize: ${info.fileSize}`);
  lines.push(`NarHash: ${info.narHash.prefixed('nix32')}`, `NarSize: ${info.narSize}`);
  lines.push(`References: ${[...info.references].sort().map(baseName).join(' ')}`);
  if (info.deriver) lines.push(`Deriver: ${baseName(info.deriver)}`);
  if (info.system) lines.push(`System: ${info.system}`);
  for (const s of info.sigs) lines.push(`Sig: ${s}`);
  if (info.ca) lines.push(`CA: ${info.ca}`);
  return lines.join('\n') + '\n';
}

/**
 * Why `url` cannot be a NAR location inside a cache, or undefined. Only plain relative paths of
 * safe characters are accepted: no scheme, no absolute path, no `.`/`..` or empty segment, no
 * percent-encoding, query or fragment — so a narinfo can never point a reader outside the cache.
 */
export function unsafeUrlReason(url: string): string | undefined {
  if (!url) return 'it is empty';
  if (url.startsWith('/')) return 'it is absolute';
  if (!/^[A-Za-z0-9._+\-/]+$/.test(url)) return 'it has characters outside A-Z a-z 0-9 . _ + - /';
  if (url.split('/').some((s) => s === '' || s === '.' || s === '..')) return "it has an empty, '.' or '..' segment";
  return undefined;
}

function count(text: string, field: string, where: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new Error(`${where}: ${field} '${printable(text)}' is not a number`);
  return Number(text);
}

/**
 * Parses a narinfo, validating every field Nix relies on. `where` names it in errors (file or
 * URL). Unknown fields are ignored, as Nix does.
 */
export function parseNarInfo(text: string, where: string, storeDir = DEFAULT_STORE_DIR): NarInfo {
  const fields = new Map<string, string>();
  const sigs: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const colon = line.indexOf(': ');
    if (colon <= 0) throw new Error(`${where}: malformed line '${printable(line.slice(0, 80))}' (expected 'Name: value')`);
    const name = line.slice(0, colon);
    const value = line.slice(colon + 2);
    if (name === 'Sig') sigs.push(value);
    else if (fields.has(name)) throw new Error(`${where}: field ${name} appears twice`);
    else fields.set(name, value);
  }
  const need = (name: string): string => {
    const v = fields.get(name);
    if (v === undefined) throw new Error(`${where}: missing ${name}`);
    return v;
  };
  const storePath = need('StorePath');
  if (!isStorePath(storePath, storeDir)) throw new Error(`${where}: StorePath '${printable(storePath)}' is not a valid path in ${storeDir}`);
  const url = need('URL');
  const bad = unsafeUrlReason(url);
  if (bad) throw new Error(`${where}: URL '${printable(url)}' is refused: ${bad}`);
  const hashField = (name: string): Hash => {
    const v = need(name);
    let h: Hash;
    try {
      h = parseHash(v);
    } catch (e) {
      throw new Error(`${where}: ${name}: ${(e as Error).message}`);
    }
    if (h.algo !== 'sha256') throw new Error(`${where}: ${name} must be sha256, got ${h.algo}`);
    return h;
  };
  const narHash = hashField('NarHash');
  const narSize = count(need('NarSize'), 'NarSize', where);
  if (narSize === 0) throw new Error(`${where}: NarSize is 0`);
  const refsText = need('References').trim();
  const references = refsText === '' ? [] : refsText.split(/ +/).map((r) => {
    if (r.includes('/') || !isStorePath(`${storeDir}/${r}`, storeDir)) throw new Error(`${where}: reference '${printable(r)}' is not a valid store path name`);
    return `${storeDir}/${r}`;
  });
  const info: NarInfo = {
    storePath, url, compression: fields.get('Compression') || 'bzip2',
    narHash, narSize, references: [...new Set(references)].sort(), sigs,
  };
  if (fields.has('FileHash')) info.fileHash = hashField('FileHash');
  if (fields.has('FileSize')) info.fileSize = count(need('FileSize'), 'FileSize', where);
  const deriver = fields.get('Deriver');
  if (deriver && deriver !== 'unknown-deriver') {
    if (deriver.includes('/')) throw new Error(`${where}: Deriver '${printable(deriver)}' is not a store path name`);
    parseStorePath(deriver, storeDir);
    info.deriver = `${storeDir}/${deriver}`;
  }
  const system = fields.get('System');
  if (system) info.system = system;
  const ca = fields.get('CA');
  if (ca) info.ca = ca;
  return info;
}

/** `nix-cache-info` as SPEC §8 gives it. */
export function formatCacheInfo(storeDir: string, priority = 40): string {
  return `StoreDir: ${storeDir}\nWantMassQuery: 1\nPriority: ${priority}\n`;
}

/** The StoreDir a `nix-cache-info` declares (Nix's default when absent). */
export function cacheInfoStoreDir(text: string): string {
  const m = /^StoreDir: (.*)$/m.exec(text);
  return m ? m[1]!.trim() : DEFAULT_STORE_DIR;
}
