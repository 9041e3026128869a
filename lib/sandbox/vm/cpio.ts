// The "newc" cpio format (the kernel's initramfs format, `cpio -H newc`): a 110-byte ASCII
// header of 8-digit hex fields, the NUL-terminated name, data, each padded to 4 bytes.

export const NEWC_MAGIC = '070701';
export const NEWC_HEADER_SIZE = 110;
export const NEWC_TRAILER = 'TRAILER!!!';

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;

/** One member as stored: `mode` includes the file type bits; symlink targets are the data. */
export interface CpioHeader {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  fileSize: number;
  devMajor: number;
  devMinor: number;
  rdevMajor: number;
  rdevMinor: number;
  name: string;
}

export interface CpioMember {
  name: string;
  mode: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  data?: Uint8Array;
  rdevMajor?: number;
  rdevMinor?: number;
}

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

function hex8(value: number, field: string): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new Error(`cpio: ${field} ${value} does not fit in 32 bits`);
  return value.toString(16).padStart(8, '0');
}

export function encodeNewcHeader(h: CpioHeader): Buffer {
  const name = Buffer.from(h.name + '\0', 'utf8');
  const fields = [
    h.ino, h.mode, h.uid, h.gid, h.nlink, h.mtime, h.fileSize, h.devMajor, h.devMinor, h.rdevMajor, h.rdevMinor, name.length, 0,
  ];
  const names = ['ino', 'mode', 'uid', 'gid', 'nlink', 'mtime', 'filesize', 'devmajor', 'devminor', 'rdevmajor', 'rdevminor', 'namesize', 'check'];
  const text = NEWC_MAGIC + fields.map((v, i) => hex8(v, names[i]!)).join('');
  return Buffer.concat([Buffer.from(text, 'ascii'), name, Buffer.alloc(pad4(NEWC_HEADER_SIZE + name.length))]);
}

/**
 * A whole archive from `members`, in the given order, with inode numbers 1, 2, … and the
 * trailer. No hard links: every member is its own inode (nlink 2 for directories, as the
 * kernel does not care and GNU cpio writes what the file system says).
 */
export function writeNewc(members: readonly CpioMember[]): Buffer {
  const parts: Buffer[] = [];
  members.forEach((m, i) => {
    const data = m.data ?? new Uint8Array(0);
    const type = m.mode & S_IFMT;
    if (data.length > 0 && type !== S_IFREG && type !== S_IFLNK) throw new Error(`cpio: '${m.name}' has data but is not a file or symlink`);
    parts.push(encodeNewcHeader({
      ino: i + 1, mode: m.mode, uid: m.uid ?? 0, gid: m.gid ?? 0, nlink: type === S_IFDIR ? 2 : 1, mtime: m.mtime ?? 0,
      fileSize: data.length, devMajor: 0, devMinor: 0, rdevMajor: m.rdevMajor ?? 0, rdevMinor: m.rdevMinor ?? 0, name: m.name,
    }));
    parts.push(Buffer.from(data), Buffer.alloc(pad4(data.length)));
  });
  parts.push(encodeNewcHeader({
    ino: 0, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, fileSize: 0, devMajor: 0, devMinor: 0, rdevMajor: 0, rdevMinor: 0, name: NEWC_TRAILER,
  }));
  const total = parts.reduce((n, p) => n + p.length, 0);
  // Like GNU cpio, round the archive up to a 512-byte block.
  parts.push(Buffer.alloc((512 - (total % 512)) % 512));
  return Buffer.concat(parts);
}

/** Parses the fixed part of a header; `name` is read separately (its size is in the header). */
export function parseNewcFixed(block: Buffer, at: number): Omit<CpioHeader, 'name'> & { nameSize: number } {
  if (block.length < NEWC_HEADER_SIZE) throw new Error(`cpio: truncated header at byte ${at}`);
  const magic = block.toString('ascii', 0, 6);
  if (magic !== NEWC_MAGIC) throw new Error(`cpio: bad magic '${magic}' at byte ${at} (only the newc format is read)`);
  const field = (i: number): number => {
    const s = block.toString('ascii', 6 + i * 8, 14 + i * 8);
    if (!/^[0-9a-fA-F]{8}$/.test(s)) throw new Error(`cpio: bad header field '${s}' at byte ${at}`);
    return parseInt(s, 16);
  };
  return {
    ino: field(0), mode: field(1), uid: field(2), gid: field(3), nlink: field(4), mtime: field(5), fileSize: field(6),
    devMajor: field(7), devMinor: field(8), rdevMajor: field(9), rdevMinor: field(10), nameSize: field(11),
  };
}

/** Where a member's name and data lie in the archive. */
export interface NewcLayout {
  nameOffset: number;
  dataOffset: number;
  next: number;
}

export function newcLayout(headerAt: number, nameSize: number, fileSize: number): NewcLayout {
  const nameOffset = headerAt + NEWC_HEADER_SIZE;
  const dataOffset = nameOffset + nameSize + pad4(NEWC_HEADER_SIZE + nameSize);
  return { nameOffset, dataOffset, next: dataOffset + fileSize + pad4(fileSize) };
}
