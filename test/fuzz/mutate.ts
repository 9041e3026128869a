import fc from 'fast-check';

/** One edit to a valid input: the usual way a parser meets bytes it was not written for. */
export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'u64'; at: number; value: bigint }
  | { kind: 'none' };

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.constantFrom(0, 1, 0x2f, 0x2e, 0x7f, 0x80, 0xff, 0x1b, 0x0a) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  // Length fields are where parsers trust their input most.
  fc.record({ kind: fc.constant('u64' as const), at: fc.nat(), value: fc.constantFrom(0n, 1n, 7n, 0xffffffffn, 0x100000000n, 1n << 53n, (1n << 64n) - 1n) }),
  fc.constant({ kind: 'none' as const }),
);

/** Applies `m` to a copy of `input` (positions are taken modulo the length). */
export function mutate(input: Uint8Array, m: Mutation): Buffer {
  const b = Buffer.from(input);
  const n = b.length;
  if (m.kind === 'none' || n === 0) return b;
  const at = (m.kind === 'u64' ? m.at - (m.at % 8) : m.at) % n;
  switch (m.kind) {
    case 'flip': b[at]! ^= 1 << m.bit; return b;
    case 'set': b[at] = m.byte; return b;
    case 'truncate': return b.subarray(0, at);
    case 'insert': return Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    case 'delete': return Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
    case 'u64': {
      if (at + 8 > n) return b;
      b.writeBigUInt64LE(m.value, at);
      return b;
    }
  }
}

/** A valid input with one mutation, or raw bytes: the two halves of every byte-level fuzzer. */
export function mutatedOrRaw(valid: fc.Arbitrary<Uint8Array>, maxRaw = 2048): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.tuple(valid, mutationArb).map(([v, m]) => mutate(v, m)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: maxRaw }).map((u) => Buffer.from(u)) },
  );
}

/** Text with one mutation, or raw text including control and non-ASCII characters. */
export function mutatedOrRawText(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.tuple(valid.map((s) => Buffer.from(s, 'utf8')), mutationArb).map(([v, m]) => mutate(v, m).toString('utf8')) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 400 }) },
  );
}

/** Splits bytes into chunks at the given cut sizes, so that parsers meet every boundary. */
export async function* chunked(bytes: Uint8Array, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (const s of sizes) {
    if (at >= bytes.length) return;
    yield bytes.subarray(at, at + s);
    at += s;
  }
  if (at < bytes.length) yield bytes.subarray(at);
}

export const chunkSizesArb: fc.Arbitrary<number[]> = fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 8 });
