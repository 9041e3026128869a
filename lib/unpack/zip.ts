import type { Readable } from 'node:stream';
import { crc32, inflateRawSync } from 'node:zlib';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { fromRandomAccessReader, type Entry, type ZipFile } from 'yauzl';
import type { ArchiveEntry, EntrySink } from './entry.js';
import { CorruptArchiveError, RefusedEntryError, UnsupportedArchiveError, shown } from './errors.js';
import { ZipFileReader } from './zip-file-reader.js';

const UNIX = 3;
const S_IFMT = 0o170000;
const SYMLINK_MAX = 4096;

/**
 * Reads a zip archive through its central directory (yauzl; the directory is the one thing held
 * in memory, an entry at a time) and hands each entry to `sink`, as Info-ZIP's unzip would
 * extract it on a Unix host: Unix mode bits from the external attributes give symlinks, the
 * executable bit and special files; names are kept as bytes, except that the Info-ZIP Unicode
 * Path field is preferred when valid and '\' is a separator in archives made on other hosts.
 * Each file's CRC-32 is checked (yauzl checks only sizes).
 */
export async function readZip(path: string, sink: EntrySink, signal?: AbortSignal): Promise<void> {
  const fd = openSync(path, 'r');
  const reader = new ZipFileReader(fd, fstatSync(fd).size);
  const zip = await new Promise<ZipFile>((resolve, reject) =>
    fromRandomAccessReader(reader, fstatSync(fd).size, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true, autoClose: false }, (err, z) =>
      err ? reject(new CorruptArchiveError(`cannot read the zip archive: ${err.message}`)) : resolve(z)),
  ).catch((e: unknown) => {
    closeSync(fd);
    throw e;
  });
  try {
    for (;;) {
      signal?.throwIfAborted();
      const e = await nextEntry(zip);
      if (e === null) break;
      await sink.add(await toEntry(zip, e, signal));
    }
  } finally {
    zip.close();
  }
}

function nextEntry(zip: ZipFile): Promise<Entry | null> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      zip.off('entry', onEntry).off('end', onEnd).off('error', onError);
    };
    const onEntry = (e: Entry): void => { done(); resolve(e); };
    const onEnd = (): void => { done(); resolve(null); };
    const onError = (err: Error): void => { done(); reject(new CorruptArchiveError(`cannot read the zip archive: ${err.message}`)); };
    zip.on('entry', onEntry).on('end', onEnd).on('error', onError);
    zip.readEntry();
  });
}

function entryName(e: Entry): Buffer {
  for (const f of e.extraFields) {
    // Info-ZIP Unicode Path: version 1, CRC-32 of the header name, then the UTF-8 name.
    if (f.id === 0x7075 && f.data.length >= 6 && f.data[0] === 1 && f.data.readUInt32LE(1) === crc32(e.fileNameRaw)) {
      return Buffer.from(f.data.subarray(5));
    }
  }
  const raw = Buffer.from(e.fileNameRaw);
  if (e.versionMadeBy >> 8 !== UNIX) for (let i = 0; i < raw.length; i++) if (raw[i] === 0x5c) raw[i] = 0x2f;
  return raw;
}

async function toEntry(zip: ZipFile, e: Entry, signal?: AbortSignal): Promise<ArchiveEntry> {
  const name = entryName(e);
  const unix = e.versionMadeBy >> 8 === UNIX ? e.externalFileAttributes >>> 16 : 0;
  const type = unix & S_IFMT;
  // MS-DOS attribute 0x10 marks a directory for archives from other hosts.
  if (name[name.length - 1] === 0x2f || type === 0o040000 || (e.versionMadeBy >> 8 !== UNIX && (e.externalFileAttributes & 0x10) !== 0)) {
    return { kind: 'directory', name };
  }
  if (type === 0o020000 || type === 0o060000) return { kind: 'special', name, what: 'device nodes' };
  if (type === 0o010000) return { kind: 'special', name, what: 'FIFOs' };
  if (type === 0o140000) return { kind: 'special', name, what: 'sockets' };
  if (e.isEncrypted()) throw new RefusedEntryError(name, 'encrypted zip entries are not supported');
  if (e.compressionMethod !== 0 && e.compressionMethod !== 8) {
    throw new UnsupportedArchiveError(`zip entry '${shown(name)}' uses compression method ${e.compressionMethod}; only stored and deflated entries are supported`);
  }
  if (type === 0o120000) {
    // A symlink's target is its content.
    if (e.uncompressedSize > SYMLINK_MAX) throw new RefusedEntryError(name, 'its symlink target is not a valid path');
    const parts: Buffer[] = [];
    for await (const chunk of body(zip, e, name, signal)) parts.push(chunk);
    return { kind: 'symlink', name, target: Buffer.concat(parts) };
  }
  return { kind: 'file', name, executable: (unix & 0o100) !== 0, body: body(zip, e, name, signal) };
}

/** Entries this small are inflated in one synchronous call instead of through a zlib stream. */
const SMALL = 1 << 20;

async function* body(zip: ZipFile, e: Entry, name: Buffer, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const failed = (why: string): CorruptArchiveError => new CorruptArchiveError(`cannot read zip entry '${shown(name)}': ${why}`);
  // Small deflated entries (most of a source tree) skip a pool round trip per entry; the
  // output cap keeps a lying header from inflating more than it declared.
  const small = e.compressionMethod === 8 && e.uncompressedSize <= SMALL && e.compressedSize <= SMALL;
  const stream = await new Promise<Readable>((resolve, reject) =>
    zip.openReadStream(e, small ? { decompress: false } : {}, (err, s) => (err ? reject(failed(err.message)) : resolve(s))));
  let crc = 0;
  try {
    if (small) {
      const raw: Buffer[] = [];
      for await (const chunk of stream) raw.push(chunk as Buffer);
      let data: Buffer;
      try {
        data = inflateRawSync(Buffer.concat(raw), { maxOutputLength: Math.max(1, e.uncompressedSize) });
      } catch (err) {
        throw failed((err as Error).message);
      }
      if (data.length !== e.uncompressedSize) throw failed(`it inflates to ${data.length} bytes, not the ${e.uncompressedSize} its header says`);
      crc = crc32(data);
      if (data.length > 0) yield data;
    } else {
      for await (const chunk of stream) {
        signal?.throwIfAborted();
        crc = crc32(chunk as Buffer, crc);
        yield chunk as Buffer;
      }
    }
  } catch (err) {
    if (err instanceof CorruptArchiveError || signal?.aborted) throw err;
    throw failed((err as Error).message);
  } finally {
    stream.destroy();
  }
  if (crc !== e.crc32) throw new CorruptArchiveError(`zip entry '${shown(name)}' is corrupt (CRC-32 mismatch)`);
}
