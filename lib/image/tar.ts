import { posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';

/**
 * A tar writer whose bytes equal Go's archive/tar (the writer behind skopeo's docker-archive),
 * for headers built without an explicit Format: USTAR when every field fits (long names split
 * into prefix/name), otherwise a PAX extended header named `<dir>/PaxHeaders.0/<file>`.
 * No record padding: the archive ends with exactly two zero blocks.
 */

export const BLOCK = 512;

export type TarEntryType = 'file' | 'symlink' | 'hardlink' | 'directory' | 'char' | 'block' | 'fifo';

export interface TarHeader {
  /** Written as given (Go's writer does not touch it); directories conventionally end in '/'. */
  name: string;
  type: TarEntryType;
  /** Permission bits as stored (Go stores no file-type bits). Defaults: file 0o644, directory 0o755, links 0o777. */
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  /** Whole seconds since the epoch; default 0. */
  mtime?: number;
  /** Bytes of content; regular files only (links and directories carry none). */
  size?: number;
  /** Target of a symlink or hardlink. */
  linkname?: string;
  /** Device numbers of a char or block device (0 otherwise). */
  devmajor?: number;
  devminor?: number;
}

const TYPEFLAG: Record<TarEntryType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', directory: '5', fifo: '6' };
const DEFAULT_MODE: Record<TarEntryType, number> = {
  file: 0o644, hardlink: 0o777, symlink: 0o777, directory: 0o755, char: 0o644, block: 0o644, fifo: 0o644,
};

// Field offsets and sizes of the USTAR header block.
const F = {
  name: [0, 100], mode: [100, 8], uid: [108, 8], gid: [116, 8], size: [124, 12], mtime: [136, 12],
  chksum: [148, 8], typeflag: [156, 1], linkname: [157, 100], magic: [257, 6], version: [263, 2],
  uname: [265, 32], gname: [297, 32], devmajor: [329, 8], devminor: [337, 8], prefix: [345, 155],
} as const;

type Field = keyof typeof F;

const NAME_SIZE = 100;
const PREFIX_SIZE = 155;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

/** Bytes of zero padding after `size` bytes of content. */
export function tarPadding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80 || c === 0) return false;
  }
  return true;
}

// Go's toASCII: drop every non-ASCII (and NUL) character, best effort for the V7 fields.
function toAscii(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80 && c !== 0) out += ch;
  }
  return out;
}

// Go's fitsInOctal: n-1 digits plus a NUL (22 digits and up always fit an int64).
function fitsInOctal(width: number, x: number): boolean {
  return x >= 0 && (width >= 22 || x < 2 ** ((width - 1) * 3));
}

/** Go's splitUSTARPath: the prefix/name split of a long ASCII path, or null when none fits. */
export function splitUstarPath(name: string): [string, string] | null {
  let length = name.length;
  if (length <= NAME_SIZE || !isAscii(name)) return null;
  if (length > PREFIX_SIZE + 1) length = PREFIX_SIZE + 1;
  else if (name[length - 1] === '/') length--;
  const i = name.lastIndexOf('/', length - 1);
  const nlen = name.length - i - 1;
  if (i <= 0 || nlen > NAME_SIZE || nlen === 0 || i > PREFIX_SIZE) return null;
  return [name.slice(0, i), name.slice(i + 1)];
}

class Block {
  readonly buf = Buffer.alloc(BLOCK);

  // Go's formatString: copy (truncating), NUL-terminate when there is room.
  str(field: Field, s: string): void {
    const [off, size] = F[field];
    const bytes = Buffer.from(s, 'latin1');
    bytes.copy(this.buf, off, 0, Math.min(bytes.length, size));
    if (bytes.length < size) this.buf[off + bytes.length] = 0;
    // Go keeps a truncated path from looking like a directory.
    if (bytes.length > size && this.buf[off + size - 1] === 0x2f) {
      const n = bytes.subarray(0, size - 1).toString('latin1').replace(/\/+$/, '').length;
      this.buf[off + n] = 0;
    }
  }

  // Go's formatOctal: zero-padded, NUL-terminated; a value that does not fit is written as 0.
  oct(field: Field, x: number): void {
    const [, size] = F[field];
    const v = fitsInOctal(size, x) ? x : 0;
    this.str(field, v.toString(8).padStart(size - 1, '0'));
  }

  // Magic "ustar\0" + version "00" (USTAR and PAX), then the checksum as 6 digits, NUL, space.
  seal(): Buffer {
    this.buf.write('ustar\0', F.magic[0], 'latin1');
    this.buf.write('00', F.version[0], 'latin1');
    this.buf.fill(0x20, F.chksum[0], F.chksum[0] + F.chksum[1]);
    let sum = 0;
    for (const b of this.buf) sum += b;
    this.buf.write(sum.toString(8).padStart(6, '0') + '\0 ', F.chksum[0], 'latin1');
    return this.buf;
  }
}

/** Go's formatPAXRecord: "<len> key=value\n" where len counts the whole record. */
export function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let size = bodyLen + String(bodyLen).length;
  if (String(size).length + bodyLen !== size) size = String(size).length + bodyLen;
  return Buffer.from(`${size}${body}`);
}

interface Resolved {
  name: string; typeflag: string; mode: number; uid: number; gid: number; uname: string; gname: string;
  mtime: number; size: number; linkname: string; devmajor: number; devminor: number;
}

function resolve(h: TarHeader): Resolved {
  const name = h.name;
  const r: Resolved = {
    name,
    typeflag: TYPEFLAG[h.type],
    mode: h.mode ?? DEFAULT_MODE[h.type],
    uid: h.uid ?? 0,
    gid: h.gid ?? 0,
    uname: h.uname ?? '',
    gname: h.gname ?? '',
    mtime: h.mtime ?? 0,
    size: h.type === 'file' ? (h.size ?? 0) : 0,
    linkname: h.linkname ?? '',
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
  };
  for (const [k, v] of [['mode', r.mode], ['uid', r.uid], ['gid', r.gid], ['mtime', r.mtime], ['size', r.size]] as const) {
    if (!Number.isSafeInteger(v)) throw new Error(`tar header ${k} must be an integer, got ${v}`);
  }
  if (r.size < 0 || r.uid < 0 || r.gid < 0) throw new Error(`tar header for ${name}: negative size, uid or gid`);
  // PAX has no record for mode; Go would fall back to GNU base-256, which nothing here needs.
  if (!fitsInOctal(8, r.mode)) throw new Error(`tar header mode ${r.mode.toString(8)} does not fit`);
  for (const [k, v] of [['devmajor', r.devmajor], ['devminor', r.devminor]] as const) {
    if (!Number.isSafeInteger(v) || !fitsInOctal(8, v)) throw new Error(`tar header for ${name}: ${k} ${v} does not fit`);
  }
  for (const [k, v] of [['name', r.name], ['linkname', r.linkname], ['uname', r.uname], ['gname', r.gname]] as const) {
    if (v.includes('\0')) throw new Error(`tar header ${k} contains NUL`);
  }
  if (r.name === '') throw new Error('tar header name is empty');
  if (h.type === 'file' && r.name.endsWith('/')) throw new Error(`regular file name may not end in '/': ${r.name}`);
  if ((h.type === 'symlink' || h.type === 'hardlink') && r.linkname === '') throw new Error(`${h.type} ${r.name} needs a linkname`);
  return r;
}

/**
 * The header block(s) Go's tar.Writer emits for this entry: one USTAR block, or a PAX
 * extended header (block + records, padded) followed by the main block.
 */
export function encodeTarHeader(header: TarHeader): Buffer {
  const h = resolve(header);
  const pax = new Map<string, string>();
  let ustar = true;

  const str = (value: string, size: number, key: string, splittable: boolean) => {
    const tooLong = Buffer.byteLength(value) > size;
    if (!isAscii(value) || tooLong) {
      if (!splittable || splitUstarPath(value) === null) ustar = false;
      pax.set(key, value);
    }
  };
  const num = (value: number, size: number, key: string) => {
    if (!fitsInOctal(size, value)) {
      ustar = false;
      pax.set(key, String(value));
    }
  };
  str(h.name, F.name[1], 'path', true);
  str(h.linkname, F.linkname[1], 'linkpath', false);
  str(h.uname, F.uname[1], 'uname', false);
  str(h.gname, F.gname[1], 'gname', false);
  num(h.uid, F.uid[1], 'uid');
  num(h.gid, F.gid[1], 'gid');
  num(h.size, F.size[1], 'size');
  num(h.mtime, F.mtime[1], 'mtime');

  if (ustar) {
    const split = splitUstarPath(h.name);
    const blk = mainBlock(h, split ? split[1] : h.name, (s) => s);
    if (split) blk.str('prefix', split[0]);
    return blk.seal();
  }

  const records = Buffer.concat([...pax.keys()].sort().map((k) => paxRecord(k, pax.get(k)!)));
  const { dir, base } = splitDir(h.name);
  let paxName = toAscii(posix.join(dir, 'PaxHeaders.0', base));
  if (paxName.length > NAME_SIZE) paxName = paxName.slice(0, NAME_SIZE);
  paxName = paxName.replace(/\/+$/, '');
  const x = new Block();
  x.buf.write('x', F.typeflag[0], 'latin1');
  x.str('name', paxName);
  x.oct('mode', 0);
  x.oct('uid', 0);
  x.oct('gid', 0);
  x.oct('size', records.length);
  x.oct('mtime', 0);
  const main = mainBlock(h, toAscii(h.name), toAscii);
  return Buffer.concat([x.seal(), records, Buffer.alloc(tarPadding(records.length)), main.seal()]);
}

// Go's path.Split: everything up to and including the last '/', and the rest.
function splitDir(p: string): { dir: string; base: string } {
  const i = p.lastIndexOf('/');
  return { dir: p.slice(0, i + 1), base: p.slice(i + 1) };
}

// Go's templateV7Plus: the fields shared by USTAR and PAX main headers.
function mainBlock(h: Resolved, name: string, text: (s: string) => string): Block {
  const b = new Block();
  b.buf.write(h.typeflag, F.typeflag[0], 'latin1');
  b.str('name', name);
  b.str('linkname', text(h.linkname));
  b.oct('mode', h.mode);
  b.oct('uid', h.uid);
  b.oct('gid', h.gid);
  b.oct('size', h.size);
  b.oct('mtime', h.mtime);
  b.str('uname', text(h.uname));
  b.str('gname', text(h.gname));
  b.oct('devmajor', h.devmajor);
  b.oct('devminor', h.devminor);
  return b;
}

/**
 * Writes `chunk`, waiting for room when the stream asks for it, but giving up if the stream
 * fails or closes meanwhile (it may never drain).
 */
export async function writeWithBackpressure(out: Writable, chunk: Uint8Array): Promise<void> {
  if (out.destroyed || out.writableEnded) throw out.errored ?? new Error('output is closed');
  if (out.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error | null) => {
      out.off('drain', onDrain).off('error', done).off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(out.errored ?? new Error('output closed'));
    out.on('drain', onDrain).on('error', done).on('close', onClose);
  });
}

/** Entry content: bytes in memory (small files) or a stream that must yield exactly `size` bytes. */
export type TarContent = Buffer | Uint8Array | string | Readable | AsyncIterable<Uint8Array>;

/**
 * Writes a tar stream into a Writable, honouring back-pressure. Entries are written one at a
 * time; await each call before the next. finish() writes the end blocks but does not end `out`.
 */
export class TarWriter {
  private readonly out: Writable;
  private busy = false;
  private finished = false;
  /** Bytes written so far. */
  position = 0;

  constructor(out: Writable) {
    this.out = out;
  }

  private async write(chunk: Uint8Array): Promise<void> {
    this.position += chunk.length;
    await writeWithBackpressure(this.out, chunk);
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.finished) throw new Error('tar writer already finished');
    if (this.busy) throw new Error('tar writer: previous entry still being written');
    this.busy = true;
    try {
      return await fn();
    } finally {
      this.busy = false;
    }
  }

  /** A regular file of `size` bytes; a stream yielding a different count is an error. */
  async addFile(header: Omit<TarHeader, 'type' | 'size'> & { size: number }, content: TarContent): Promise<void> {
    await this.guard(async () => {
      await this.write(encodeTarHeader({ ...header, type: 'file' }));
      let n = 0;
      const chunks: AsyncIterable<Uint8Array> | Uint8Array[] =
        typeof content === 'string' ? [Buffer.from(content)] : content instanceof Uint8Array ? [content] : content;
      for await (const chunk of chunks) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        n += bytes.length;
        if (n > header.size) throw new Error(`tar entry ${header.name}: content exceeds declared size ${header.size}`);
        await this.write(bytes);
      }
      if (n !== header.size) throw new Error(`tar entry ${header.name}: declared size ${header.size}, got ${n} bytes`);
      const pad = tarPadding(n);
      if (pad) await this.write(ZERO_BLOCK.subarray(0, pad));
    });
  }

  async addSymlink(header: Omit<TarHeader, 'type' | 'size' | 'linkname'>, target: string): Promise<void> {
    await this.guard(() => this.write(encodeTarHeader({ ...header, type: 'symlink', linkname: target })));
  }

  async addHardlink(header: Omit<TarHeader, 'type' | 'size' | 'linkname'>, target: string): Promise<void> {
    await this.guard(() => this.write(encodeTarHeader({ ...header, type: 'hardlink', linkname: target })));
  }

  /** A char or block device (with its device numbers) or a FIFO: a header and no content. */
  async addSpecial(header: Omit<TarHeader, 'size' | 'linkname'> & { type: 'char' | 'block' | 'fifo' }): Promise<void> {
    await this.guard(() => this.write(encodeTarHeader(header)));
  }

  async addDirectory(header: Omit<TarHeader, 'type' | 'size'>): Promise<void> {
    await this.guard(() => this.write(encodeTarHeader({ ...header, type: 'directory' })));
  }

  /** The end-of-archive marker: two zero blocks, no padding to a record size (as Go). */
  async finish(): Promise<void> {
    await this.guard(async () => {
      await this.write(ZERO_BLOCK);
      await this.write(ZERO_BLOCK);
    });
    this.finished = true;
  }
}
