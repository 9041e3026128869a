import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { NAR_MAGIC, padding } from './format.js';

/** Size of the pieces a NAR is produced in. */
export const NAR_CHUNK = 1 << 20;

const T = (s: string) => Buffer.from(s, 'latin1');
const TOKENS = {
  magic: T(NAR_MAGIC), open: T('('), close: T(')'), type: T('type'), regular: T('regular'),
  executable: T('executable'), empty: T(''), contents: T('contents'), symlink: T('symlink'),
  target: T('target'), directory: T('directory'), entry: T('entry'), name: T('name'), node: T('node'),
};
const SLASH = Buffer.from('/');

export class UnsupportedFileTypeError extends Error {}
export class ChangedWhileArchivingError extends Error {}

/** Fills fixed-size chunks with NAR bytes; full chunks queue in `ready` until the generator yields them. */
class ChunkBuilder {
  buf: Buffer;
  pos = 0;
  ready: Buffer[] = [];

  constructor(private readonly alloc: () => Buffer) {
    this.buf = alloc();
  }

  room(): number {
    return NAR_CHUNK - this.pos;
  }
  /** Queues the current chunk; takes a fresh buffer unless this was the last one. */
  seal(last = false): void {
    if (this.pos === 0) return;
    this.ready.push(this.buf.subarray(0, this.pos));
    if (!last) this.buf = this.alloc();
    this.pos = 0;
  }
  int(n: number): void {
    if (this.room() < 8) this.seal();
    this.buf.writeUInt32LE(n >>> 0, this.pos);
    this.buf.writeUInt32LE(Math.floor(n / 0x100000000), this.pos + 4);
    this.pos += 8;
  }
  zeros(n: number): void {
    if (this.room() < n) this.seal();
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
  }
  str(bytes: Uint8Array): void {
    this.int(bytes.length);
    let off = 0;
    while (off < bytes.length) {
      if (this.room() === 0) this.seal();
      const n = Math.min(this.room(), bytes.length - off);
      this.buf.set(bytes.subarray(off, off + n), this.pos);
      this.pos += n;
      off += n;
    }
    this.zeros(padding(bytes.length));
  }
  /**
   * Reads `size` bytes of `fd` straight into chunks (no intermediate copy), yielding each chunk
   * as soon as it is full so that a large file never holds more than one buffer.
   */
  *file(fd: number, size: number, path: Buffer): Generator<Buffer> {
    let position = 0;
    while (position < size) {
      if (this.room() === 0) {
        this.seal();
        yield* this.ready.splice(0);
      }
      const n = readSync(fd, this.buf, this.pos, Math.min(this.room(), size - position), position);
      if (n === 0) throw new ChangedWhileArchivingError(`file '${path.toString()}' shrank while it was being archived`);
      this.pos += n;
      position += n;
    }
  }
}

interface DirFrame {
  path: Buffer;
  names: Buffer[];
  next: number;
}

/**
 * Serialises the file system object at `root` as a NAR, byte-identical to `nix-store --dump`,
 * as a synchronous sequence of chunks of NAR_CHUNK bytes (the last may be shorter), each in a
 * buffer from `alloc` (which may recycle buffers the consumer is done with). Paths are
 * bytes, so names that are not UTF-8 survive; directory entries are sorted as bytes. Iterative,
 * so deep trees cannot overflow the stack. Runs in the NAR worker (see dump.ts), where blocking
 * calls are the fastest way to read and never stall the main thread.
 */
export function* narChunks(root: Buffer, alloc: () => Buffer = () => Buffer.allocUnsafeSlow(NAR_CHUNK)): Generator<Buffer> {
  const out = new ChunkBuilder(alloc);
  const stack: DirFrame[] = [];
  out.str(TOKENS.magic);
  let pending: Buffer | undefined = root;
  for (;;) {
    if (pending) {
      const path: Buffer = pending;
      pending = undefined;
      const st = lstatSync(path);
      out.str(TOKENS.open);
      out.str(TOKENS.type);
      if (st.isSymbolicLink()) {
        out.str(TOKENS.symlink);
        out.str(TOKENS.target);
        out.str(readlinkSync(path, { encoding: 'buffer' }));
        out.str(TOKENS.close);
      } else if (st.isFile()) {
        out.str(TOKENS.regular);
        if (st.mode & 0o100) {
          out.str(TOKENS.executable);
          out.str(TOKENS.empty);
        }
        out.str(TOKENS.contents);
        out.int(st.size);
        const fd = openSync(path, 'r');
        try {
          yield* out.file(fd, st.size, path);
        } finally {
          closeSync(fd);
        }
        out.zeros(padding(st.size));
        out.str(TOKENS.close);
      } else if (st.isDirectory()) {
        out.str(TOKENS.directory);
        stack.push({ path, names: readdirSync(path, { encoding: 'buffer' }).sort(Buffer.compare), next: 0 });
      } else {
        throw new UnsupportedFileTypeError(`file '${path.toString()}' has an unsupported type`);
      }
    } else {
      const top = stack[stack.length - 1];
      if (!top) break;
      if (top.next > 0) out.str(TOKENS.close); // ends the previous entry
      if (top.next < top.names.length) {
        const name = top.names[top.next++]!;
        out.str(TOKENS.entry);
        out.str(TOKENS.open);
        out.str(TOKENS.name);
        out.str(name);
        out.str(TOKENS.node);
        pending = Buffer.concat([top.path, SLASH, name]);
      } else {
        stack.pop();
        out.str(TOKENS.close);
      }
    }
    while (out.ready.length) yield out.ready.shift()!;
  }
  out.seal(true);
  yield* out.ready;
}

/**
 * narChunks for a consumer that is done with each chunk by the time it asks for the next (it
 * writes it out synchronously, say): a chunk's buffer is reused once the next one is requested,
 * so a whole dump allocates a handful of buffers — the contract dumpPath's chunks have too.
 */
export function* narChunksRecycled(root: Buffer): Generator<Buffer> {
  const free: Buffer[] = [];
  for (const chunk of narChunks(root, () => free.pop() ?? Buffer.allocUnsafeSlow(NAR_CHUNK))) {
    yield chunk;
    // Every buffer comes whole from the allocator above, so its memory is the full chunk.
    free.push(Buffer.from(chunk.buffer, chunk.byteOffset, NAR_CHUNK));
  }
}
