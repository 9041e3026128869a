import { printable } from '../text/index.js';

// NAR primitives (SPEC.md §1): little-endian u64 integers and byte strings padded to 8 bytes.
export const NAR_MAGIC = 'nix-archive-1';

export function padding(len: number): number {
  return (8 - (len % 8)) % 8;
}

/** The bytes of `str(s)`: u64 length, the bytes, zero padding. */
export function encodeStr(s: string | Uint8Array): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  const out = Buffer.alloc(8 + bytes.length + padding(bytes.length));
  out.writeBigUInt64LE(BigInt(bytes.length), 0);
  out.set(bytes, 8);
  return out;
}

/** Names a NAR may hold in a directory: non-empty, not `.`/`..`, no `/` or NUL. */
export function invalidNameReason(name: Uint8Array): string | undefined {
  if (name.length === 0) return 'empty name';
  if (name.length === 1 && name[0] === 0x2e) return "name '.'";
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return "name '..'";
  if (name.includes(0x2f)) return "name containing '/'";
  if (name.includes(0)) return 'name containing NUL';
  return undefined;
}

/** Shows a byte name readably in messages, keeping non-UTF-8 bytes visible as \xNN. */
export function showName(name: Uint8Array): string {
  let out = '';
  const text = Buffer.from(name).toString('utf8');
  if (Buffer.from(text, 'utf8').equals(Buffer.from(name)) && !text.includes('\uFFFD')) return printable(JSON.stringify(text).slice(1, -1), Infinity);
  for (const b of name) out += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
}
