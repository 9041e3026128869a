import { mkdtempSync, promises as fsp, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { sniffCompression } from '../../image/index.js';
import { diffJson, parseJsonBytes, type JsonDiff } from './json-diff.js';
import { extractTarMembers, firstDifference, listTarMembers, listTree, sha256File, type Member, type MemberList } from './members.js';

/**
 * A small diffoscope: the file-level difference between two archives (tar, gzip- or
 * zstd-compressed tar, docker-archive, layer), two trees, two JSON documents or two files.
 * Archive members that are themselves archives or JSON (layers, configs, manifests) are
 * compared inside, to a bounded depth.
 */

export type ContentKind = 'tar' | 'tree' | 'json' | 'file';

/** The metadata fields a member comparison reports, in report order. */
export const MEMBER_FIELDS = ['name', 'type', 'mode', 'uid', 'gid', 'size', 'mtime', 'linkname', 'device', 'sha256'] as const;
export type MemberField = (typeof MEMBER_FIELDS)[number];

export type DiffItem =
  | { kind: 'added' | 'removed'; name: string; member: Member }
  | {
    kind: 'changed';
    name: string;
    fields: { field: MemberField; a: string; b: string }[];
    /** First byte at which the contents differ, for regular files of both sides. */
    firstDifferingOffset?: number;
    /** The comparison inside, when the member is itself an archive or JSON. */
    inner?: DiffReport;
  }
  | { kind: 'duplicate'; name: string; side: 'a' | 'b' };

export interface DiffReport {
  a: string;
  b: string;
  kind: ContentKind;
  identical: boolean;
  items: DiffItem[];
  /** For JSON documents. */
  json?: JsonDiff;
  /** For two plain files: the first differing byte. */
  firstDifferingOffset?: number;
}

export interface DiffOptions {
  /** How deep archives inside archives are opened (default 3). */
  depth?: number;
  /** Members whose names hint at JSON are compared as JSON up to this size (default 16 MiB). */
  jsonLimit?: number;
}

const TAR_MAGIC_OFFSET = 257;

/** What a path holds: a tree, a (possibly compressed) tar, JSON, or other bytes. */
export async function contentKind(path: string, jsonLimit = 16 << 20): Promise<ContentKind> {
  const st = await fsp.stat(path);
  if (st.isDirectory()) return 'tree';
  const fh = await fsp.open(path);
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    const h = head.subarray(0, bytesRead);
    const compression = sniffCompression(h);
    if (compression === 'gzip' || compression === 'zstd') return 'tar';
    if (bytesRead >= TAR_MAGIC_OFFSET + 5 && h.subarray(TAR_MAGIC_OFFSET, TAR_MAGIC_OFFSET + 5).toString('latin1') === 'ustar') return 'tar';
    if (st.size <= jsonLimit && /^\s*[[{]/.test(h.toString('utf8'))) {
      if (parseJsonBytes(await fsp.readFile(path))) return 'json';
    }
    return 'file';
  } finally {
    await fh.close();
  }
}

function fieldValue(m: Member, f: MemberField): string {
  const v = m[f];
  if (f === 'name') return v as string;
  if (v === undefined) return '';
  return f === 'mode' ? (v as number).toString(8).padStart(4, '0') : String(v);
}

function memberChanges(a: Member, b: Member): { field: MemberField; a: string; b: string }[] {
  return MEMBER_FIELDS.filter((f) => fieldValue(a, f) !== fieldValue(b, f)).map((f) => ({ field: f, a: fieldValue(a, f), b: fieldValue(b, f) }));
}

const isRegular = (m: Member): boolean => m.sha256 !== undefined;
/** Members worth opening: layers, nested archives, configs and manifests. */
const looksNested = (name: string): boolean => /\.(tar|tar\.gz|tgz|tar\.zst|json)$/.test(name) || ['json', 'manifest.json', 'repositories', 'index.json', 'oci-layout'].includes(basename(name));

/** A member's name with its digests taken out: an image archive names layers and configs by their hashes. */
const shape = (name: string): string => name.replace(/[0-9a-f]{64}/g, '<digest>');

/**
 * Pairs a removed and an added member that differ only in the digests in their names (the same
 * layer or config of two builds), when the pairing is one to one.
 */
function renamedPairs(removed: string[], added: string[]): Map<string, string> {
  const byShape = (names: string[]) => {
    const m = new Map<string, string[]>();
    for (const n of names) m.set(shape(n), [...(m.get(shape(n)) ?? []), n]);
    return m;
  };
  const r = byShape(removed);
  const a = byShape(added);
  const pairs = new Map<string, string>();
  for (const [k, names] of r) {
    const other = a.get(k);
    if (names.length === 1 && other?.length === 1 && k !== names[0]) pairs.set(names[0]!, other[0]!);
  }
  return pairs;
}

type Opener = (namesA: string[], namesB: string[]) => Promise<{ a: Map<string, string>; b: Map<string, string>; done: () => void }>;

async function compareLists(la: MemberList, lb: MemberList, open: Opener, opts: Required<DiffOptions>): Promise<DiffItem[]> {
  const items: DiffItem[] = [];
  for (const n of la.duplicates) items.push({ kind: 'duplicate', name: n, side: 'a' });
  for (const n of lb.duplicates) items.push({ kind: 'duplicate', name: n, side: 'b' });
  const names = [...new Set([...la.members.keys(), ...lb.members.keys()])].sort();
  const renamed = renamedPairs(names.filter((n) => !lb.members.has(n)), names.filter((n) => !la.members.has(n)));
  const renamedTo = new Set(renamed.values());
  /** Changed members whose contents differ: [name in A, name in B]. */
  const contentDiffers: [string, string][] = [];
  const changed = new Map<string, Extract<DiffItem, { kind: 'changed' }>>();
  for (const name of names) {
    if (renamedTo.has(name)) continue;
    const a = la.members.get(name);
    const bName = renamed.get(name) ?? name;
    const b = lb.members.get(bName);
    if (!a) { items.push({ kind: 'added', name, member: b! }); continue; }
    if (!b) { items.push({ kind: 'removed', name, member: a }); continue; }
    const fields = memberChanges(a, b);
    if (fields.length === 0) continue;
    const item: Extract<DiffItem, { kind: 'changed' }> = { kind: 'changed', name, fields };
    items.push(item);
    changed.set(name, item);
    if (isRegular(a) && isRegular(b) && a.sha256 !== b.sha256) contentDiffers.push([name, bName]);
  }
  if (contentDiffers.length > 0) {
    const files = await open(contentDiffers.map(([x]) => x), contentDiffers.map(([, y]) => y));
    try {
      for (const [name, bName] of contentDiffers) {
        const fa = files.a.get(name);
        const fb = files.b.get(bName);
        if (!fa || !fb) continue;
        const item = changed.get(name)!;
        const offset = await firstDifference(fa, fb);
        if (offset !== undefined) item.firstDifferingOffset = offset;
        if (opts.depth > 0 && looksNested(name)) {
          const inner = await diffFiles(fa, fb, { ...opts, depth: opts.depth - 1 }, `${name} (a)`, `${name} (b)`);
          if (inner.kind !== 'file') item.inner = inner;
        }
      }
    } finally {
      files.done();
    }
  }
  return items;
}

async function diffFiles(a: string, b: string, opts: Required<DiffOptions>, labelA = a, labelB = b): Promise<DiffReport> {
  const [ka, kb] = await Promise.all([contentKind(a, opts.jsonLimit), contentKind(b, opts.jsonLimit)]);
  const kind: ContentKind = ka === kb ? ka : 'file';
  if (kind === 'json') {
    const [ba, bb] = await Promise.all([fsp.readFile(a), fsp.readFile(b)]);
    const json = diffJson(parseJsonBytes(ba)!.value, parseJsonBytes(bb)!.value, ba.equals(bb));
    return { a: labelA, b: labelB, kind, identical: ba.equals(bb), items: [], json };
  }
  if (kind === 'tar') {
    const [la, lb] = await Promise.all([listTarMembers(a), listTarMembers(b)]);
    const items = await compareLists(la, lb, async (namesA, namesB) => {
      const dir = mkdtempSync(join(tmpdir(), 'fetch-image-diff-'));
      try {
        await Promise.all([fsp.mkdir(join(dir, 'a')), fsp.mkdir(join(dir, 'b'))]);
        const [ea, eb] = await Promise.all([extractTarMembers(a, namesA, join(dir, 'a')), extractTarMembers(b, namesB, join(dir, 'b'))]);
        return { a: ea, b: eb, done: () => rmSync(dir, { recursive: true, force: true }) };
      } catch (e) {
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }, opts);
    return { a: labelA, b: labelB, kind, identical: items.length === 0 && (await sameBytes(a, b)), items };
  }
  const offset = await firstDifference(a, b);
  return { a: labelA, b: labelB, kind: 'file', identical: offset === undefined, items: [], ...(offset === undefined ? {} : { firstDifferingOffset: offset }) };
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([fsp.stat(a), fsp.stat(b)]);
  return sa.size === sb.size && (await sha256File(a)) === (await sha256File(b));
}

/** The file-level difference between two paths (files, archives or trees). */
export async function diffPaths(a: string, b: string, options: DiffOptions = {}): Promise<DiffReport> {
  const opts: Required<DiffOptions> = { depth: options.depth ?? 3, jsonLimit: options.jsonLimit ?? 16 << 20 };
  const [sa, sb] = await Promise.all([fsp.stat(a), fsp.stat(b)]);
  if (sa.isDirectory() && sb.isDirectory()) {
    const [la, lb] = await Promise.all([listTree(a), listTree(b)]);
    // Trees' mtimes are not content (store paths all have mtime 1; unpacked trees carry the clock).
    for (const l of [la, lb]) for (const m of l.members.values()) m.mtime = 0;
    const items = await compareLists(la, lb, async (namesA, namesB) => ({
      a: new Map(namesA.map((n) => [n, join(a, n)])),
      b: new Map(namesB.map((n) => [n, join(b, n)])),
      done: () => undefined,
    }), opts);
    return { a, b, kind: 'tree', identical: items.length === 0, items };
  }
  if (sa.isDirectory() !== sb.isDirectory()) {
    return { a, b, kind: 'file', identical: false, items: [{ kind: 'changed', name: '.', fields: [{ field: 'type', a: sa.isDirectory() ? 'Directory' : 'File', b: sb.isDirectory() ? 'Directory' : 'File' }] }] };
  }
  return diffFiles(a, b, opts);
}
