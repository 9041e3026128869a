// Nix's base-32: its own alphabet (no e, o, t, u) and its own bit order — the digest is read as a
// little-endian bit string and printed from the last 5-bit group to the first (SPEC.md §2).
const ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';
const VALUE = new Map<string, number>([...ALPHABET].map((c, i) => [c, i]));

export function nix32Length(byteLength: number): number {
  return Math.floor((byteLength * 8 - 1) / 5) + 1;
}

export function encodeNix32(bytes: Uint8Array): string {
  const len = nix32Length(bytes.length);
  let out = '';
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    const c = (bytes[i]! >> j) | (i + 1 < bytes.length ? bytes[i + 1]! << (8 - j) : 0);
    out += ALPHABET[c & 31];
  }
  return out;
}

/** Decodes nix32 into `byteLength` bytes; throws on a foreign character or a non-zero carry. */
export function decodeNix32(text: string, byteLength: number): Uint8Array {
  if (text.length !== nix32Length(byteLength)) {
    throw new Error(`nix32 string has ${text.length} characters, expected ${nix32Length(byteLength)}`);
  }
  const out = new Uint8Array(byteLength);
  for (let n = 0; n < text.length; n++) {
    const ch = text[text.length - 1 - n]!;
    const digit = VALUE.get(ch);
    if (digit === undefined) throw new Error(`invalid character '${ch}' in nix32 string`);
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    out[i]! |= (digit << j) & 0xff;
    const carry = digit >> (8 - j);
    if (i + 1 < byteLength) out[i + 1]! |= carry;
    else if (carry !== 0) throw new Error('nix32 string encodes more bits than the hash holds');
  }
  return out;
}

export function isNix32(text: string): boolean {
  for (const c of text) if (!VALUE.has(c)) return false;
  return true;
}
