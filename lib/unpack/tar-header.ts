/**
 * Pure parsing of tar headers (v7, ustar, GNU) and pax records, keeping names as bytes:
 * node-tar decodes names as UTF-8, which would turn a Latin-1 name into U+FFFD and change the
 * unpacked tree's NAR hash, so we read the 512-byte blocks ourselves.
 */
import { CorruptArchiveError } from './errors.js';

export const BLOCK = 512;

export interface TarHeader {
  name: Buffer;
  linkname: Buffer;
  mode: number;
  size: number;
  /** The typeflag as a character; '\0' is reported as '0'. */
  type: string;
  /** Owner, time and device numbers, or undefined when a field is unreadable (unpack ignores them). */
  owner?: HeaderOwner;
}

/** The numeric fields a root file system needs (lower dirs of the runAsRoot stage). */
export interface HeaderOwner {
  uid: number;
  gid: number;
  mtime: number;
  devmajor: number;
  devminor: number;
}

/** Bytes up to the first NUL (a field may also fill its whole width). */
function cstr(field: Buffer): Buffer {
  const nul = field.indexOf(0);
  return nul < 0 ? field : field.subarray(0, nul);
}

/** A numeric field: octal text, or GNU/star base-256 when the high bit of its first byte is set. */
export function parseNumber(field: Buffer, what: string): number {
  const first = field[0] ?? 0;
  if (first & 0x80) {
    if (first !== 0x80) throw new CorruptArchiveError(`tar header has a negative ${what}`);
    let v = 0n;
    for (let i = 1; i < field.length; i++) v = (v << 8n) | BigInt(field[i] as number);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptArchiveError(`tar header ${what} is too large`);
    return Number(v);
  }
  const text = field.toString('latin1').replace(/^[ \0]+/, '').replace(/[ \0].*$/s, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new CorruptArchiveError(`tar header has an invalid ${what} field`);
  const v = parseInt(text, 8);
  if (!Number.isSafeInteger(v)) throw new CorruptArchiveError(`tar header ${what} is too large`);
  return v;
}

/** Whether the block's checksum field matches its bytes (unsigned or, as old tars wrote, signed). */
export function checksumOk(block: Buffer): boolean {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += b;
    signed += b >= 0x80 ? b - 0x100 : b;
  }
  let stored: number;
  try {
    stored = parseNumber(block.subarray(148, 156), 'checksum');
  } catch {
    return false;
  }
  return stored === unsigned || stored === signed;
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** Whether the block looks like the first header of a tar archive. */
export function looksLikeTar(block: Buffer): boolean {
  if (block.length < BLOCK) return false;
  if (block.subarray(257, 262).toString('latin1') === 'ustar') return true;
  return !isZeroBlock(block) && checksumOk(block);
}

/** Parses a header block whose checksum the caller has checked. */
export function parseHeader(block: Buffer): TarHeader {
  const magic = block.subarray(257, 265).toString('latin1');
  let name = cstr(block.subarray(0, 100));
  // POSIX ustar keeps the head of long names in `prefix`; GNU uses that area for other fields.
  if (magic.startsWith('ustar\0')) {
    const prefix = cstr(block.subarray(345, 500));
    if (prefix.length > 0) name = Buffer.concat([prefix, Buffer.from('/'), name]);
  }
  const flag = block[156] as number;
  const owner = parseOwner(block, magic.startsWith('ustar'));
  return {
    name,
    linkname: cstr(block.subarray(157, 257)),
    mode: parseNumber(block.subarray(100, 108), 'mode'),
    size: parseNumber(block.subarray(124, 136), 'size'),
    type: flag === 0 ? '0' : String.fromCharCode(flag),
    ...(owner ? { owner } : {}),
  };
}

/** Device numbers exist only in ustar and GNU headers (v7 leaves that area to other uses). */
function parseOwner(block: Buffer, ustarOrGnu: boolean): HeaderOwner | undefined {
  try {
    return {
      uid: parseNumber(block.subarray(108, 116), 'uid'),
      gid: parseNumber(block.subarray(116, 124), 'gid'),
      mtime: parseNumber(block.subarray(136, 148), 'mtime'),
      devmajor: ustarOrGnu ? parseNumber(block.subarray(329, 337), 'devmajor') : 0,
      devminor: ustarOrGnu ? parseNumber(block.subarray(337, 345), 'devminor') : 0,
    };
  } catch {
    return undefined;
  }
}

/** The pax keys we act on; values are raw bytes. */
export interface PaxRecords {
  path?: Buffer;
  linkpath?: Buffer;
  size?: number;
  uid?: number;
  gid?: number;
  /** Whole seconds (pax allows a fraction, which is dropped). */
  mtime?: number;
  /** GNU's pax encodings of sparse files (GNU.sparse.*): 0.0, 0.1 and 1.0. */
  sparse?: PaxSparse;
}

export interface PaxSparse {
  /** GNU.sparse.major (1 for format 1.0, whose map opens the member's data). */
  major?: number;
  /** GNU.sparse.name: the real name (0.1, 1.0); the header's is a made-up one. */
  name?: Buffer;
  /** GNU.sparse.realsize (1.0) or GNU.sparse.size (0.x). */
  realSize?: number;
  /** Offset, length pairs from GNU.sparse.map (0.1) or repeated offset/numbytes keys (0.0). */
  map?: number[];
}

const decimal = (value: Buffer, what: string): number => {
  const text = value.toString('latin1');
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new CorruptArchiveError(`pax header has an invalid ${what}`);
  return Number(text);
};

const paxTime = (value: Buffer): number => {
  const m = /^(-?[0-9]+)(\.[0-9]*)?$/.exec(value.toString('latin1'));
  if (!m || !Number.isSafeInteger(Number(m[1]))) throw new CorruptArchiveError('pax header has an invalid mtime');
  return Math.floor(Number(m[0]));
};

/** Parses `LEN KEY=VALUE\n` records. An empty value removes the key (POSIX). */
export function parsePax(data: Buffer, into: PaxRecords): PaxRecords {
  const out: PaxRecords = { ...into };
  let off = 0;
  while (off < data.length) {
    if (data[off] === 0) break; // some writers pad the data with NULs
    const space = data.indexOf(0x20, off);
    if (space < 0) throw new CorruptArchiveError('malformed pax extended header');
    const len = Number(data.subarray(off, space).toString('latin1'));
    if (!Number.isSafeInteger(len) || len <= space - off + 1 || off + len > data.length || data[off + len - 1] !== 0x0a) {
      throw new CorruptArchiveError('malformed pax extended header');
    }
    const rec = data.subarray(space + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new CorruptArchiveError('malformed pax extended header');
    const key = rec.subarray(0, eq).toString('utf8');
    const value = rec.subarray(eq + 1);
    if (key === 'path') out.path = value.length ? cstr(value) : undefined;
    else if (key === 'linkpath') out.linkpath = value.length ? cstr(value) : undefined;
    else if (key === 'size') out.size = value.length ? decimal(value, 'size') : undefined;
    else if (key === 'uid') out.uid = value.length ? decimal(value, 'uid') : undefined;
    else if (key === 'gid') out.gid = value.length ? decimal(value, 'gid') : undefined;
    else if (key === 'mtime') out.mtime = value.length ? paxTime(value) : undefined;
    else if (key.startsWith('GNU.sparse.')) sparseKey(out.sparse ??= {}, key.slice(11), value);
    off += len;
  }
  return out;
}

/** Max offset/length numbers in one sparse map (a million segments). */
export const SPARSE_MAX = 2_000_000;

function sparseKey(sp: PaxSparse, key: string, value: Buffer): void {
  switch (key) {
    case 'major':
      sp.major = decimal(value, 'GNU.sparse.major');
      break;
    case 'name':
      sp.name = cstr(value);
      break;
    case 'realsize':
    case 'size':
      sp.realSize = decimal(value, `GNU.sparse.${key}`);
      break;
    case 'map':
      sp.map = value.length ? value.toString('latin1').split(',').map((v) => decimal(Buffer.from(v), 'GNU.sparse.map')) : [];
      if (sp.map.length % 2 !== 0 || sp.map.length > SPARSE_MAX) throw new CorruptArchiveError('pax header has an invalid GNU.sparse.map');
      break;
    // Format 0.0 repeats these two keys, one pair per segment, in order.
    case 'offset':
      (sp.map ??= []).push(decimal(value, 'GNU.sparse.offset'));
      if (sp.map.length > SPARSE_MAX) throw new CorruptArchiveError('too many sparse segments');
      break;
    case 'numbytes':
      if (!sp.map || sp.map.length % 2 !== 1) throw new CorruptArchiveError('GNU.sparse.numbytes without GNU.sparse.offset');
      sp.map.push(decimal(value, 'GNU.sparse.numbytes'));
      break;
  }
}
