// Reference scanning (SPEC.md §3): find the 32-character hash parts of candidate store paths
// anywhere in a NAR stream, including occurrences split across chunk boundaries.
import { HASH_PART_LENGTH } from './path.js';

const NIX32 = new Uint8Array(256);
for (const c of '0123456789abcdfghijklmnpqrsvwxyz') NIX32[c.charCodeAt(0)] = 1;

export class ReferenceScanner {
  private readonly wanted: Map<string, string>;
  private readonly found = new Set<string>();
  private tail: Buffer = Buffer.alloc(0);

  /** `candidates` are full store paths (or base names); their hash parts are looked for. */
  constructor(candidates: Iterable<string>) {
    this.wanted = new Map();
    for (const p of candidates) {
      const base = p.slice(p.lastIndexOf('/') + 1);
      this.wanted.set(base.slice(0, HASH_PART_LENGTH), p);
    }
  }

  update(chunk: Uint8Array): void {
    if (this.wanted.size === this.found.size) return;
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    // A hash split between chunks: scan the seam (the previous chunk's last 31 bytes and this
    // chunk's first 31) on its own, so the chunk itself is scanned in place, never copied.
    if (this.tail.length) this.scan(Buffer.concat([this.tail, buf.subarray(0, HASH_PART_LENGTH - 1)]));
    this.scan(buf);
    const keep = Math.min(HASH_PART_LENGTH - 1, buf.length);
    const tail = Buffer.concat([this.tail, buf.subarray(buf.length - keep)]);
    this.tail = Buffer.from(tail.subarray(Math.max(0, tail.length - (HASH_PART_LENGTH - 1))));
  }

  private scan(buf: Buffer): void {
    const last = buf.length - HASH_PART_LENGTH;
    let i = 0;
    while (i <= last) {
      // Check from the end of the window backwards: a non-nix32 byte at j lets us skip past it.
      let j = HASH_PART_LENGTH - 1;
      while (j >= 0 && NIX32[buf[i + j]!]) j--;
      if (j >= 0) {
        i += j + 1;
        continue;
      }
      const part = buf.toString('latin1', i, i + HASH_PART_LENGTH);
      const path = this.wanted.get(part);
      if (path !== undefined) this.found.add(path);
      i++;
    }
  }

  /** The candidates found so far, sorted. */
  result(): string[] {
    return [...this.found].sort();
  }
}
