import { NAR_MAGIC, invalidNameReason, padding, showName } from './format.js';
import { ByteSource } from './source.js';

export class NarFormatError extends Error {}

/** What a NAR holds, reported in order. `path` is the list of names from the top (empty = top). */
export interface NarVisitor {
  directory(path: readonly Buffer[]): Promise<void> | void;
  /** `contents` must be consumed before the parser can go on. */
  file(path: readonly Buffer[], executable: boolean, size: number, contents: AsyncIterable<Buffer>): Promise<void>;
  symlink(path: readonly Buffer[], target: Buffer): Promise<void> | void;
}

/** A token read as latin1, shown with control characters escaped (it is hostile input). */
const showToken = (token: string): string => showName(Buffer.from(token, 'latin1'));

const MAX_TOKEN = 4096; // longest name or link target accepted; bounds memory on hostile input

/**
 * Parses and validates a NAR stream: magic, tokens, zero padding, strictly sorted valid names,
 * no truncation and no trailing bytes. Any defect throws NarFormatError naming the byte offset.
 */
export async function parseNar(input: AsyncIterable<Uint8Array>, visitor: NarVisitor): Promise<{ size: number }> {
  const src = new ByteSource(input);
  const fail = (msg: string, at = src.offset): never => {
    throw new NarFormatError(`malformed NAR at byte ${at}: ${msg}`);
  };

  const readInt = async (): Promise<number> => {
    const b = await src.read(8);
    const hi = b.readUInt32LE(4);
    if (hi >= 0x200000) fail('length field too large', src.offset - 8);
    return hi * 0x100000000 + b.readUInt32LE(0);
  };
  const readPadding = async (len: number): Promise<void> => {
    const pad = padding(len);
    if (pad === 0) return;
    const at = src.offset;
    const bytes = await src.read(pad);
    if (bytes.some((x) => x !== 0)) fail('non-zero padding', at);
  };
  const readStr = async (max = MAX_TOKEN): Promise<Buffer> => {
    const at = src.offset;
    const len = await readInt();
    if (len > max) fail(`string of ${len} bytes is longer than the ${max} allowed`, at);
    const bytes = Buffer.from(await src.read(len));
    await readPadding(len);
    return bytes;
  };
  const expect = async (token: string): Promise<void> => {
    const at = src.offset;
    const got = await readStr(64);
    if (got.toString('latin1') !== token) fail(`expected '${token}', found '${showName(got)}'`, at);
  };

  const node = async (path: Buffer[]): Promise<void> => {
    await expect('(');
    await expect('type');
    const typeAt = src.offset;
    const type = (await readStr(64)).toString('latin1');
    if (type === 'regular') {
      let at = src.offset;
      let tag = (await readStr(64)).toString('latin1');
      let executable = false;
      if (tag === 'executable') {
        executable = true;
        await expect('');
        at = src.offset;
        tag = (await readStr(64)).toString('latin1');
      }
      if (tag !== 'contents') fail(`expected 'contents', found '${showToken(tag)}'`, at);
      const size = await readInt();
      await visitor.file(path, executable, size, src.stream(size));
      await readPadding(size);
      await expect(')');
    } else if (type === 'symlink') {
      await expect('target');
      const at = src.offset;
      const target = await readStr();
      if (target.length === 0) fail('empty symlink target', at);
      if (target.includes(0)) fail('symlink target contains NUL', at);
      await visitor.symlink(path, target);
      await expect(')');
    } else if (type === 'directory') {
      await visitor.directory(path);
      let prev: Buffer | undefined;
      for (;;) {
        const at = src.offset;
        const tag = (await readStr(64)).toString('latin1');
        if (tag === ')') break;
        if (tag !== 'entry') fail(`expected 'entry' or ')', found '${showToken(tag)}'`, at);
        await expect('(');
        await expect('name');
        const nameAt = src.offset;
        const name = await readStr(255);
        const bad = invalidNameReason(name);
        if (bad) fail(`invalid entry ${bad} ('${showName(name)}')`, nameAt);
        if (prev && Buffer.compare(prev, name) >= 0) {
          fail(`entry '${showName(name)}' is ${prev.equals(name) ? 'a duplicate' : 'out of order'} after '${showName(prev)}'`, nameAt);
        }
        prev = name;
        await expect('node');
        await node([...path, name]);
        await expect(')');
      }
    } else {
      fail(`unknown node type '${showToken(type)}'`, typeAt);
    }
  };

  await expect(NAR_MAGIC).catch((e: unknown) => {
    if (e instanceof NarFormatError) throw new NarFormatError('not a NAR: it does not start with nix-archive-1');
    throw e;
  });
  await node([]);
  if (!(await src.atEnd())) fail('unexpected bytes after the end of the archive');
  return { size: src.offset };
}
