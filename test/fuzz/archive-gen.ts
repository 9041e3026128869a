import fc from 'fast-check';
import { crc32, deflateRawSync } from 'node:zlib';
import { BLOCK, encodeTarHeader, paxRecord, tarPadding } from '../../lib/image/index.js';

const segment = fc.constantFrom('a', 'b', 'dir', '..', '.', '', 'x y', 'é', '\u001b[2J', 'C', 'c');
const memberName = fc.array(segment, { minLength: 1, maxLength: 4 }).chain((segs) =>
  fc.constantFrom('', '/', './').map((lead) => lead + segs.join('/')));
const linkTarget = fc.oneof(memberName, fc.constantFrom('/etc/passwd', '../../outside', 'a', 'dir/../a', '/'));

/** A tar member as a test writes it: the typeflag raw, so every kind GNU tar knows appears. */
export interface TarMember {
  name: string;
  flag: string;
  data: Uint8Array;
  linkname: string;
  mode: number;
}

const paxData = fc.array(
  fc.tuple(fc.constantFrom('path', 'linkpath', 'size', 'GNU.sparse.major', 'GNU.sparse.minor', 'GNU.sparse.name', 'GNU.sparse.realsize', 'GNU.sparse.map', 'mtime', 'uid'),
    fc.oneof(memberName, fc.constantFrom('0', '1', '4096', '99999999999', '0,1,2,3', '-1'))),
  { maxLength: 4 },
).map((rs) => Buffer.concat(rs.map(([k, v]) => paxRecord(k, v))));

export const tarMemberArb: fc.Arbitrary<TarMember> = fc.record({
  name: memberName,
  flag: fc.constantFrom('0', '0', '0', '5', '5', '2', '1', 'x', 'g', 'L', 'K', 'S', '3', '4', '6', '7', 'V', 'Z'),
  data: fc.uint8Array({ maxLength: 700 }),
  linkname: linkTarget,
  mode: fc.constantFrom(0o644, 0o755, 0o4755, 0o000, 0o777),
}).chain((m) => (m.flag === 'x' || m.flag === 'g' ? paxData.map((data) => ({ ...m, data })) : fc.constant(m)));

/** The bytes of a tar with these members (ustar headers; typeflag and checksum patched in). */
export function tarOf(members: readonly TarMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const carriesData = !['1', '2', '3', '4', '5', '6'].includes(m.flag);
    const data = carriesData ? Buffer.from(m.data) : Buffer.alloc(0);
    // Names are written raw into the header (the writer refuses the hostile ones we want).
    const block = Buffer.from(encodeTarHeader({ name: 'a', type: 'file', size: data.length, mode: m.mode }));
    block.fill(0, 0, 100);
    block.fill(0, 157, 257);
    Buffer.from(m.name).copy(block, 0, 0, 100);
    Buffer.from(m.linkname).copy(block, 157, 0, 100);
    block.write(m.flag, 156, 'latin1');
    block.fill(0x20, 148, 156);
    let sum = 0;
    for (const x of block) sum += x;
    block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    parts.push(block, data, Buffer.alloc(tarPadding(data.length)));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

export interface ZipMember {
  name: string;
  data: Uint8Array;
  deflate: boolean;
  /** Unix mode in the external attributes (symlinks are 0o120000). */
  mode: number;
  flags: number;
}

export const zipMemberArb: fc.Arbitrary<ZipMember> = fc.record({
  name: fc.oneof(memberName, memberName.map((n) => `${n}/`)),
  data: fc.oneof(fc.uint8Array({ maxLength: 500 }), linkTarget.map((t) => Buffer.from(t))),
  deflate: fc.boolean(),
  mode: fc.constantFrom(0o100644, 0o100755, 0o120777, 0o040755, 0o010644, 0),
  flags: fc.constantFrom(0, 0, 0, 1, 0x800, 8),
});

/** The bytes of a zip with these members: local headers, data, central directory, end record. */
export function zipOf(members: readonly ZipMember[]): Buffer {
  const local: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const name = Buffer.from(m.name);
    const raw = Buffer.from(m.data);
    const stored = m.deflate ? deflateRawSync(raw) : raw;
    const crc = crc32(raw);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(20, 4); lh.writeUInt16LE(m.flags, 6); lh.writeUInt16LE(m.deflate ? 8 : 0, 8);
    lh.writeUInt32LE(crc, 14); lh.writeUInt32LE(stored.length, 18); lh.writeUInt32LE(raw.length, 22); lh.writeUInt16LE(name.length, 26);
    local.push(lh, name, stored);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(0x0314, 4); ch.writeUInt16LE(20, 6); ch.writeUInt16LE(m.flags, 8); ch.writeUInt16LE(m.deflate ? 8 : 0, 10);
    ch.writeUInt32LE(crc, 16); ch.writeUInt32LE(stored.length, 20); ch.writeUInt32LE(raw.length, 24); ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE((m.mode << 16) >>> 0, 38); ch.writeUInt32LE(offset, 42);
    central.push(ch, name);
    offset += lh.length + name.length + stored.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(members.length, 8); end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...local, cd, end]);
}
