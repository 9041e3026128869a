import { chmodSync, mkdirSync, openSync, closeSync, writeSync, symlinkSync, writeFileSync } from 'node:fs';

const b = (...parts: (string | Buffer)[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));

/**
 * Builds a tree that exercises every corner of the NAR format: awkward names (spaces, newlines,
 * quotes, non-ASCII, bytes that are not UTF-8, names whose byte order differs from JavaScript's
 * UTF-16 order), all executable-bit combinations, every kind of symlink, empty files and
 * directories, deep nesting, a directory of thousands of entries, and a file far larger than any
 * internal buffer. `bigFileBytes` sets that file's size.
 */
export function makeTrickyTree(root: string, opts: { bigFileBytes?: number; manyEntries?: number; depth?: number } = {}): void {
  const R = Buffer.from(root);
  mkdirSync(R, { recursive: true });
  const file = (rel: Buffer | string, content: string | Buffer, mode = 0o644) => {
    const p = b(R, '/', rel);
    writeFileSync(p, content);
    chmodSync(p, mode);
  };
  const dir = (rel: Buffer | string) => mkdirSync(b(R, '/', rel), { recursive: true });

  dir('names');
  for (const n of ['with space', 'new\nline', 'quote"d', "apo'strophe", 'back\\slash', 'tab\there', 'ünïcödé', '日本語', 'emoji😀', 'B', '_', 'a', '-dash', '.hidden']) {
    file(b('names/', n), `content of ${n}\n`);
  }
  // Not UTF-8: must round-trip as raw bytes.
  file(b('names/', Buffer.from([0x6c, 0x61, 0x74, 0x69, 0x6e, 0x31, 0xe9])), 'latin-1 name\n');
  file(b('names/', Buffer.from([0xff, 0xfe, 0x41])), 'invalid utf-8\n');
  // U+1F600 sorts before U+E000 in UTF-16 but after it in UTF-8 bytes.
  file(b('names/', '\u{1F600}x'), 'astral\n');
  file(b('names/', '\uE000x'), 'private use\n');
  file(b('names/', '\uFFFDx'), 'replacement char\n');

  dir('modes');
  // Every combination of the user, group and other execute bits.
  for (let m = 0; m < 8; m++) file(`modes/x${m.toString(2).padStart(3, '0')}`, `mode ${m}\n`, 0o644 | (m & 4 ? 0o100 : 0) | (m & 2 ? 0o010 : 0) | (m & 1 ? 0o001 : 0));
  file('modes/read-only', 'x\n', 0o444);

  dir('links/target-dir');
  symlinkSync('target-dir', b(R, '/links/rel-dir'));
  symlinkSync('../names/a', b(R, '/links/rel-file'));
  symlinkSync('/etc/hostname', b(R, '/links/absolute'));
  symlinkSync('does/not/exist', b(R, '/links/dangling'));
  symlinkSync(Buffer.from([0x78, 0xff]), b(R, '/links/non-utf8-target'));

  dir('empty-dir');
  file('empty-file', '');
  dir('empty-dir-with-empty/inner');

  let deep = 'deep';
  for (let i = 0; i < (opts.depth ?? 60); i++) deep += `/d${i}`;
  dir(deep);
  file(`${deep}/leaf`, 'bottom\n');

  dir('many');
  const n = opts.manyEntries ?? 3000;
  for (let i = 0; i < n; i++) file(`many/e${i}`, i % 7 === 0 ? '' : `entry ${i}\n`, i % 3 === 0 ? 0o755 : 0o644);

  // Larger than the 1 MiB NAR chunk and not a multiple of 8, with varied content.
  const size = opts.bigFileBytes ?? 5 * 1024 * 1024 + 3;
  const fd = openSync(b(R, '/big.bin'), 'w');
  const block = Buffer.alloc(65536);
  for (let off = 0, k = 0; off < size; off += block.length, k++) {
    for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761 + k) >>> 0, i);
    writeSync(fd, block, 0, Math.min(block.length, size - off));
  }
  closeSync(fd);
}
