import type { ByteReader } from './byte-reader.js';
import { printable } from '../text/index.js';

const FLUSH_AT = 256 * 1024;
const MAX_TOKEN = 4096;

/**
 * The exact bytes of the one NAR that starts at the reader's position, found by walking just
 * enough of the grammar to know where it ends (the export format does not say how long a NAR
 * is). Validation proper is left to the NAR reader that consumes these bytes; contents stream
 * through in the pieces they arrive in, small tokens are batched.
 */
export async function* frameNar(r: ByteReader): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const keep = (b: Buffer): void => {
    pending.push(Buffer.from(b));
    pendingBytes += b.length;
  };
  const flush = function* (): Generator<Buffer> {
    if (!pendingBytes) return;
    const out = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    yield out;
  };
  const int = async (): Promise<number> => {
    const b = await r.read(8);
    keep(b);
    const hi = b.readUInt32LE(4);
    if (hi >= 0x200000) throw new Error(`NAR in bundle: integer at byte ${r.offset - 8} is too large`);
    return hi * 0x100000000 + b.readUInt32LE(0);
  };
  const padOf = (n: number): number => (8 - (n % 8)) % 8;
  const str = async (): Promise<string> => {
    const at = r.offset;
    const len = await int();
    if (len > MAX_TOKEN) throw new Error(`NAR in bundle: token at byte ${at} is ${len} bytes long`);
    const b = await r.read(len + padOf(len));
    keep(b);
    return b.subarray(0, len).toString('latin1');
  };
  const expect = async (tok: string): Promise<void> => {
    const at = r.offset;
    const got = await str();
    if (got !== tok) throw new Error(`NAR in bundle is malformed at byte ${at}: expected '${tok}'`);
  };

  // An explicit stack instead of recursion: a hostile bundle cannot exhaust the call stack.
  await expect('nix-archive-1');
  let depth = 0;
  const startNode = async (): Promise<'dir' | 'leaf'> => {
    await expect('(');
    await expect('type');
    const type = await str();
    if (type === 'directory') return 'dir';
    if (type === 'symlink') {
      await expect('target');
      await str();
      await expect(')');
      return 'leaf';
    }
    if (type !== 'regular') throw new Error(`NAR in bundle: unknown node type '${printable(type, 40)}'`);
    let tag = await str();
    if (tag === 'executable') {
      await expect('');
      tag = await str();
    }
    if (tag !== 'contents') throw new Error(`NAR in bundle: expected 'contents' at byte ${r.offset}`);
    const size = await int();
    yieldContents = size;
    return 'leaf';
  };
  let yieldContents = -1;
  const contents = async function* (): AsyncGenerator<Buffer> {
    if (yieldContents < 0) return;
    const size = yieldContents;
    yieldContents = -1;
    for await (const piece of r.pieces(size + padOf(size))) {
      if (piece.length >= FLUSH_AT / 4) {
        yield* flush();
        yield Buffer.from(piece);
      } else {
        keep(piece);
        if (pendingBytes >= FLUSH_AT) yield* flush();
      }
    }
    await expect(')');
  };

  let kind = await startNode();
  yield* contents();
  if (kind === 'dir') depth = 1;
  while (depth > 0) {
    const tag = await str();
    if (tag === ')') {
      depth--;
      if (depth > 0) await expect(')'); // closes the entry that held this directory
      continue;
    }
    if (tag !== 'entry') throw new Error(`NAR in bundle: expected 'entry' or ')' at byte ${r.offset}`);
    await expect('(');
    await expect('name');
    await str();
    await expect('node');
    kind = await startNode();
    yield* contents();
    if (kind === 'dir') depth++;
    else await expect(')');
    if (pendingBytes >= FLUSH_AT) yield* flush();
  }
  yield* flush();
}
