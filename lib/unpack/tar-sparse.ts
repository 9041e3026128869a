/**
 * GNU tar's sparse members, read into a map of data segments so that the file can be written
 * with holes, as GNU tar extracts it (the NAR sees the same zeros either way). Formats: old GNU
 * ('S' headers with the map in the header and extension blocks) and pax 0.0, 0.1 and 1.0.
 */
import type { ByteReader } from './byte-reader.js';
import { CorruptArchiveError } from './errors.js';
import { BLOCK, SPARSE_MAX, parseNumber } from './tar-header.js';

export interface SparseMap {
  /** The file's size, holes included. */
  realSize: number;
  /** Offset, length pairs of the stored segments, in file order. */
  segments: number[];
}

const corrupt = (why: string): CorruptArchiveError => new CorruptArchiveError(`corrupt sparse tar member: ${why}`);

/** Reads `count` entries of 24 bytes (offset, numbytes) from `block` at `at`; false once an empty entry ends the list. */
function readEntries(block: Buffer, at: number, count: number, into: number[]): boolean {
  for (let i = 0; i < count; i++) {
    const e = block.subarray(at + 24 * i, at + 24 * (i + 1));
    if (e[0] === 0) return false;
    into.push(parseNumber(e.subarray(0, 12), 'sparse offset'), parseNumber(e.subarray(12, 24), 'sparse length'));
    if (into.length > SPARSE_MAX) throw corrupt('too many segments');
  }
  return true;
}

/** The old GNU format: 4 entries in the header, 21 in each extension block that follows. */
export async function oldGnuMap(header: Buffer, r: ByteReader): Promise<SparseMap> {
  const segments: number[] = [];
  readEntries(header, 386, 4, segments);
  let extended = header[482] !== 0;
  while (extended) {
    const ext = await r.read(BLOCK);
    if (ext === null) throw corrupt('the archive ends inside its map');
    readEntries(ext, 0, 21, segments);
    extended = ext[504] !== 0;
  }
  return { realSize: parseNumber(header.subarray(483, 495), 'sparse real size'), segments };
}

/**
 * Format 1.0: the data opens with the map as decimal lines (count, then offset and length per
 * segment), padded to a block. Returns the map and the bytes of data it took.
 */
export async function pax1Map(r: ByteReader, realSize: number): Promise<{ map: SparseMap; used: number }> {
  const numbers: number[] = [];
  let want = -1;
  let line = '';
  let used = 0;
  while (want < 0 || numbers.length < want) {
    const block = await r.read(BLOCK);
    if (block === null) throw corrupt('the archive ends inside its map');
    used += BLOCK;
    for (let i = 0; i < BLOCK && (want < 0 || numbers.length < want); i++) {
      const c = block[i] as number;
      if (c !== 0x0a) {
        if (c < 0x30 || c > 0x39 || line.length > 20) throw corrupt('bad map');
        line += String.fromCharCode(c);
        continue;
      }
      const n = Number(line);
      if (line === '' || !Number.isSafeInteger(n)) throw corrupt('bad map');
      line = '';
      if (want < 0) {
        if (n * 2 > SPARSE_MAX) throw corrupt('too many segments');
        want = n * 2;
      } else {
        numbers.push(n);
      }
    }
  }
  return { map: { realSize, segments: numbers }, used };
}

/** Checks that segments are in order, apart, inside the file, and hold exactly `dataSize` bytes. */
export function checkMap(map: SparseMap, dataSize: number): void {
  let end = 0;
  let total = 0;
  for (let i = 0; i < map.segments.length; i += 2) {
    const off = map.segments[i] as number;
    const len = map.segments[i + 1] as number;
    if (off < end || off + len > map.realSize) throw corrupt('its segments overlap or pass its size');
    end = off + len;
    total += len;
  }
  if (total !== dataSize) throw corrupt(`its segments hold ${total} bytes but it stores ${dataSize}`);
}
