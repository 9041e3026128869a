import { closeSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { RandomAccessReader } from 'yauzl';
import { CorruptArchiveError } from './errors.js';

const WINDOW = 1 << 20;
const CHUNK = 256 * 1024;

/**
 * The archive file for yauzl, read synchronously through two 1 MiB windows: one follows the
 * central directory, the other the entries' headers and data. yauzl's own reader made an
 * async round trip for every header and name (several per entry), which made zips of many
 * small files four times slower than unzip.
 */
export class ZipFileReader extends RandomAccessReader {
  private readonly fd: number;
  private readonly size: number;
  /** Most recently used first. */
  private windows: { start: number; buf: Buffer }[] = [];

  constructor(fd: number, size: number) {
    super();
    this.fd = fd;
    this.size = size;
  }

  /** Copies `length` bytes at `position` into `into` at `offset`. */
  private copy(into: Buffer, offset: number, length: number, position: number): void {
    if (position + length > this.size) throw new CorruptArchiveError('unexpected end of the zip file');
    if (length >= WINDOW / 2) {
      for (let done = 0; done < length; ) {
        const n = readSync(this.fd, into, offset + done, length - done, position + done);
        if (n === 0) throw new CorruptArchiveError('unexpected end of the zip file');
        done += n;
      }
      return;
    }
    let w = this.windows.find((x) => position >= x.start && position + length <= x.start + x.buf.length);
    if (w === undefined) {
      const buf = Buffer.allocUnsafe(Math.min(WINDOW, this.size - position));
      let got = 0;
      while (got < buf.length) {
        const n = readSync(this.fd, buf, got, buf.length - got, position + got);
        if (n === 0) break;
        got += n;
      }
      if (got < length) throw new CorruptArchiveError('unexpected end of the zip file');
      w = { start: position, buf: buf.subarray(0, got) };
    }
    this.windows = [w, ...this.windows.filter((x) => x !== w)].slice(0, 2);
    w.buf.copy(into, offset, position - w.start, position - w.start + length);
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    let err: Error | null = null;
    try {
      this.copy(buffer, offset, length, position);
    } catch (e) {
      err = e as Error;
    }
    setImmediate(() => callback(err));
  }

  override _readStreamForRange(start: number, end: number): Readable {
    let pos = start;
    const stream = new Readable({
      highWaterMark: CHUNK,
      read: () => {
        if (pos >= end) {
          stream.push(null);
          return;
        }
        const n = Math.min(CHUNK, end - pos);
        const buf = Buffer.allocUnsafe(n);
        try {
          this.copy(buf, 0, n, pos);
        } catch (e) {
          stream.destroy(e as Error);
          return;
        }
        pos += n;
        stream.push(buf);
      },
    });
    return stream;
  }

  override close(callback: (err: Error | null) => void): void {
    let err: Error | null = null;
    try {
      closeSync(this.fd);
    } catch (e) {
      err = e as Error;
    }
    setImmediate(() => callback(err));
  }
}
