import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { mkdirSync, readFileSync, readdirSync, symlinkSync, linkSync, writeFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { BLOCK, TarWriter, encodeTarHeader, paxRecord, splitUstarPath, type TarHeader } from '../lib/image/index.js';
import { havePeer } from './helpers/peers.js';
import { runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';

/** A Writable that keeps what it gets; `delay` ms per write makes back-pressure real. */
class Sink extends Writable {
  chunks: Buffer[] = [];
  drains = 0;
  constructor(private readonly delay = 0, highWaterMark = 16 * 1024) {
    super({ highWaterMark });
    this.on('drain', () => this.drains++);
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this.chunks.push(chunk);
    if (this.delay) setTimeout(done, this.delay);
    else done();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

// Header blocks from `skopeo copy docker://... docker-archive:` (skopeo 1.9.3, Go archive/tar).
const SKOPEO_SYMLINK = Buffer.from('MjdjMDQxNDBiMTAxYjJkNzcyZDFjNmI4NjhlYWZjZGYyOTc0OGY5ODljZmYyNDkwOTNiOWU1NjM4NTM0ZDNmYy9sYXllci50YXIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAADAwMDAwMDAAMDAwMDAwMAAwMDAwMDAwADAwMDAwMDAwMDAwADAwMDAwMDAwMDAwADAzMzI2MgAgMi4uL2YwMzZjNjJkMjY0ZGI0OTJhOGZjMjAwMmNiMjFlZTQ5OTgxMDczZWM5ZjNlYWRhNTllODNjMjMwYmMxNjkwMTUudGFyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB1c3RhcgAwMAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAwMDAwMDAwADAwMDAwMDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'base64');
const SKOPEO_MANIFEST = Buffer.from('bWFuaWZlc3QuanNvbgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAADAwMDA0NDQAMDAwMDAwMAAwMDAwMDAwADAwMDAwMDAwNDI2ADAwMDAwMDAwMDAwADAxMTcwNgAgMAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB1c3RhcgAwMAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAwMDAwMDAwADAwMDAwMDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'base64');

test('header blocks equal skopeo docker-archive headers byte for byte', () => {
  const link = encodeTarHeader({
    type: 'symlink', name: '27c04140b101b2d772d1c6b868eafcdf29748f989cff249093b9e5638534d3fc/layer.tar',
    linkname: '../f036c62d264db492a8fc2002cb21ee49981073ec9f3eada59e83c230bc169015.tar', mode: 0,
  });
  assert.equal(link.toString('hex'), SKOPEO_SYMLINK.toString('hex'));
  const file = encodeTarHeader({ type: 'file', name: 'manifest.json', mode: 0o444, size: 278 });
  assert.equal(file.toString('hex'), SKOPEO_MANIFEST.toString('hex'));
  // The field layout, spelled out: USTAR magic, 7-digit octal + NUL, checksum "NNNNNN\0 ".
  assert.is(file.subarray(257, 265).toString('latin1'), 'ustar\x0000');
  assert.is(file.subarray(100, 108).toString('latin1'), '0000444\0');
  assert.is(file.subarray(124, 136).toString('latin1'), '00000000426\0');
  assert.is(file.subarray(148, 156).toString('latin1'), '011706\0 ');
  assert.is(file.subarray(329, 345).toString('latin1'), '0000000\x000000000\0');
});

test('USTAR prefix split follows Go splitUSTARPath', () => {
  const a = 'a'.repeat(60);
  assert.equal(splitUstarPath(`${a}/${'b'.repeat(60)}`), [a, 'b'.repeat(60)]);
  assert.is(splitUstarPath('short'), null);
  assert.is(splitUstarPath(`d/${'x'.repeat(120)}`), null); // the last component alone is > 100
  assert.is(splitUstarPath(`${'p'.repeat(156)}/f`), null); // prefix > 155
  assert.equal(splitUstarPath(`${'p'.repeat(155)}/f`), ['p'.repeat(155), 'f']);
  assert.is(splitUstarPath(`é/${'x'.repeat(120)}`), null); // not ASCII
  // A directory's trailing slash does not count as the split point.
  assert.equal(splitUstarPath(`${a}/${'c'.repeat(50)}/`), [a, `${'c'.repeat(50)}/`]);
});

test('PAX records: length prefix counts itself, keys sorted, PaxHeaders.0 name', () => {
  assert.is(paxRecord('path', 'x').toString(), '9 path=x\n');
  // 98 bytes + "100" would be 101: the length field grows by a digit and counts that too.
  assert.is(paxRecord('path', 'x'.repeat(91)).toString(), `101 path=${'x'.repeat(91)}\n`);
  const big = encodeTarHeader({ type: 'file', name: 'dir/big', size: 8 * 1024 ** 3, uid: 1 << 21, mode: 0o644 });
  assert.is(big.length, 3 * BLOCK);
  assert.is(big.subarray(0, 100).toString('latin1').replace(/\0+$/, ''), 'dir/PaxHeaders.0/big');
  assert.is(big[156], 0x78); // 'x'
  assert.is(big.subarray(124, 136).toString('latin1'), '00000000042\0');
  const records = big.subarray(BLOCK, BLOCK + 36).toString('latin1');
  assert.is(records, '19 size=8589934592\n15 uid=2097152\n\0\0');
  // The main header keeps the fields that fit and writes 0 for those that do not.
  const main = big.subarray(2 * BLOCK);
  assert.is(main.subarray(124, 136).toString('latin1'), '00000000000\0');
  assert.is(main.subarray(108, 116).toString('latin1'), '0000000\0');
  assert.is(main.subarray(100, 108).toString('latin1'), '0000644\0');
  // 8 GiB - 1 still fits the octal field: plain USTAR.
  assert.is(encodeTarHeader({ type: 'file', name: 'f', size: 8 * 1024 ** 3 - 1 }).length, BLOCK);
});

test('invalid headers are refused, not written wrongly', () => {
  assert.throws(() => encodeTarHeader({ type: 'file', name: 'a/', size: 0 }), /may not end/);
  assert.throws(() => encodeTarHeader({ type: 'file', name: 'a\0b', size: 0 }), /NUL/);
  assert.throws(() => encodeTarHeader({ type: 'symlink', name: 'l' }), /linkname/);
  assert.throws(() => encodeTarHeader({ type: 'file', name: 'f', mode: 0o10000000 }), /mode/);
  assert.throws(() => encodeTarHeader({ type: 'file', name: 'f', size: 1.5 }), /integer/);
});

test('TarWriter: declared size is enforced both ways', async () => {
  const short = new TarWriter(new Sink());
  try {
    await short.addFile({ name: 'f', size: 10 }, Buffer.from('abc'));
    assert.unreachable('short content accepted');
  } catch (e) {
    assert.match(String(e), /declared size 10, got 3/);
  }
  const long = new TarWriter(new Sink());
  try {
    await long.addFile({ name: 'f', size: 2 }, (async function* () { yield Buffer.from('abc'); })());
    assert.unreachable('long content accepted');
  } catch (e) {
    assert.match(String(e), /exceeds declared size/);
  }
});

test('TarWriter waits for a slow output (back-pressure) and ends with exactly two zero blocks', async () => {
  const sink = new Sink(1, 4096);
  const tar = new TarWriter(sink);
  const chunk = Buffer.alloc(8192, 7);
  let produced = 0;
  let maxAhead = 0;
  async function* slowConsumerSource() {
    for (let i = 0; i < 40; i++) {
      produced += chunk.length;
      maxAhead = Math.max(maxAhead, produced - sink.chunks.reduce((n, c) => n + c.length, 0));
      yield chunk;
    }
  }
  await tar.addFile({ name: 'big', size: 40 * chunk.length }, slowConsumerSource());
  await tar.finish();
  await new Promise<void>((resolve) => sink.end(resolve));
  assert.ok(sink.drains > 0, 'writer never waited for drain');
  assert.ok(maxAhead <= 4 * chunk.length, `writer ran ${maxAhead} bytes ahead of the sink`);
  const out = sink.bytes;
  assert.is(out.length, BLOCK + 40 * chunk.length + 2 * BLOCK);
  assert.ok(out.subarray(out.length - 2 * BLOCK).equals(Buffer.alloc(2 * BLOCK)));
});

interface GoEntry { header: TarHeader; headerBytes: Buffer; data: Buffer }

// Walks an archive written by Go, keeping each entry's raw header bytes (PAX block included).
function parseGoTar(buf: Buffer): GoEntry[] {
  const entries: GoEntry[] = [];
  const field = (b: Buffer, off: number, len: number) => b.subarray(off, off + len).toString('latin1').replace(/\0.*$/s, '');
  const octal = (b: Buffer, off: number, len: number) => parseInt(field(b, off, len) || '0', 8);
  let off = 0;
  let pax: Map<string, string> | null = null;
  let start = 0;
  while (off < buf.length) {
    const h = buf.subarray(off, off + BLOCK);
    if (h.equals(Buffer.alloc(BLOCK))) break;
    let size = octal(h, 124, 12);
    const type = String.fromCharCode(h[156]!);
    if (pax === null) start = off;
    if (type === 'x') {
      pax = new Map();
      const text = buf.subarray(off + BLOCK, off + BLOCK + size).toString('utf8');
      for (const rec of text.split('\n').filter(Boolean)) {
        const kv = rec.slice(rec.indexOf(' ') + 1);
        pax.set(kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1));
      }
      off += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
      continue;
    }
    const prefix = field(h, 345, 155);
    let name = pax?.get('path') ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    if (pax?.has('size')) size = Number(pax.get('size'));
    const kinds: Record<string, TarHeader['type']> = { '0': 'file', '1': 'hardlink', '2': 'symlink', '5': 'directory' };
    const kind = kinds[type];
    if (!kind) throw new Error(`unexpected tar type ${type}`);
    const header: TarHeader = {
      name, type: kind, mode: octal(h, 100, 8), uid: octal(h, 108, 8), gid: octal(h, 116, 8),
      uname: field(h, 265, 32), gname: field(h, 297, 32), mtime: octal(h, 136, 12),
      ...(kind === 'file' ? { size } : {}),
      ...(kind === 'symlink' || kind === 'hardlink' ? { linkname: pax?.get('linkpath') ?? field(h, 157, 100) } : {}),
    };
    const dataStart = off + BLOCK;
    const stored = kind === 'file' ? size : 0;
    entries.push({ header, headerBytes: buf.subarray(start, dataStart), data: buf.subarray(dataStart, dataStart + stored) });
    off = dataStart + Math.ceil(stored / BLOCK) * BLOCK;
    pax = null;
  }
  return entries;
}

test('differential: headers and whole layer equal what Go archive/tar wrote (via umoci repack)', async () => {
  if (!havePeer('umoci')) return;
  const tmp = tempDir();
  try {
    const layout = join(tmp.path, 'layout');
    await runOk('umoci', ['init', '--layout', layout]);
    await runOk('umoci', ['new', '--image', `${layout}:t`]);
    const bundle = join(tmp.path, 'bundle');
    await runOk('umoci', ['unpack', '--image', `${layout}:t`, bundle]);
    const root = join(bundle, 'rootfs');
    const long = 'x'.repeat(120);
    const split = join('p', 'y'.repeat(60), 'z'.repeat(60));
    mkdirSync(join(root, 'd', long), { recursive: true });
    writeFileSync(join(root, 'd', long, 'f'), 'in a long dir\n');
    mkdirSync(join(root, split), { recursive: true });
    writeFileSync(join(root, split, 'file-in-split-path'), 'split\n');
    writeFileSync(join(root, 'é-ünï.txt'), 'unicode\n');
    writeFileSync(join(root, 'exec'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(root, 'empty'), '');
    writeFileSync(join(root, 'block-sized'), Buffer.alloc(BLOCK, 1));
    linkSync(join(root, 'exec'), join(root, 'hard'));
    symlinkSync('T'.repeat(130), join(root, 'longlink'));
    symlinkSync('exec', join(root, 'shortlink'));
    for (const name of readdirSync(root)) {
      if (name !== 'longlink' && name !== 'shortlink') utimesSync(join(root, name), 1700000000, 1700000000);
    }
    await runOk('umoci', ['repack', '--image', `${layout}:t`, bundle]);
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(readFileSync(join(layout, 'blobs/sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { layers: { digest: string }[] };
    const goTar = gunzipSync(readFileSync(join(layout, 'blobs/sha256', manifest.layers.at(-1)!.digest.slice(7))));
    const entries = parseGoTar(goTar);
    assert.ok(entries.some((e) => e.headerBytes.length > BLOCK), 'umoci wrote no PAX header; the vectors lost their point');
    assert.ok(entries.some((e) => e.headerBytes.readUInt8(345) !== 0), 'umoci wrote no USTAR prefix split');

    for (const e of entries) {
      const ours = encodeTarHeader(e.header);
      if (!ours.equals(e.headerBytes)) {
        assert.fixture(ours.toString('latin1'), e.headerBytes.toString('latin1'), `header of ${e.header.name}`);
      }
    }
    const sink = new Sink();
    const tar = new TarWriter(sink);
    for (const e of entries) {
      const h = e.header;
      if (h.type === 'file') await tar.addFile({ ...h, size: e.data.length }, e.data);
      else if (h.type === 'directory') await tar.addDirectory(h);
      else if (h.type === 'symlink') await tar.addSymlink(h, h.linkname!);
      else await tar.addHardlink(h, h.linkname!);
    }
    await tar.finish();
    assert.ok(sink.bytes.equals(goTar), 'rewritten layer differs from the Go-written one');
  } finally {
    tmp.remove();
  }
});

const nameArb = fc.array(
  fc.oneof(fc.stringMatching(/^[a-zA-Z0-9._-]{1,70}$/), fc.constantFrom('é', 'ünï', '日本', 'x'.repeat(101))),
  { minLength: 1, maxLength: 5 },
).map((parts) => parts.join('/')).filter((n) => n !== '.' && n !== '..' && !n.split('/').includes('..'));

test('property: node-tar reads back every name, link, mode, owner and content we write', async () => {
  await fc.assert(fc.asyncProperty(
    fc.array(fc.record({
      name: nameArb,
      kind: fc.constantFrom('file', 'symlink', 'directory'),
      size: fc.integer({ min: 0, max: 1500 }),
      mode: fc.integer({ min: 0, max: 0o7777 }),
      uid: fc.oneof(fc.integer({ min: 0, max: 70000 }), fc.constant(3_000_000)),
      uname: fc.oneof(fc.constant(''), fc.stringMatching(/^[a-z]{1,40}$/)),
          // node-tar drops a symlink whose main header has an empty linkname even when a PAX linkpath
      // follows (Go writes exactly that for an all-non-ASCII target); GNU tar is checked below.
      target: nameArb.filter((t) => /[\x01-\x7f]/.test(t)),
    }), { minLength: 1, maxLength: 6 }),
    async (specs) => {
      const sink = new Sink();
      const tar = new TarWriter(sink);
      for (const s of specs) {
        const common = { name: s.name, mode: s.mode, uid: s.uid, uname: s.uname, mtime: 1234567890 };
        if (s.kind === 'file') await tar.addFile({ ...common, size: s.size }, Buffer.alloc(s.size, s.size & 0xff));
        else if (s.kind === 'symlink') await tar.addSymlink(common, s.target);
        else await tar.addDirectory(common);
      }
      await tar.finish();
      const seen: { path: string; type: string; mode?: number; uid?: number; uname?: string; linkpath?: string; data: Buffer }[] = [];
      await new Promise<void>((resolve, reject) => {
        const parser = new Parser({
          strict: true,
          onReadEntry: (entry: ReadEntry) => {
            const chunks: Buffer[] = [];
            entry.on('data', (c: Buffer) => chunks.push(c));
            entry.on('end', () => seen.push({
              path: entry.path, type: entry.type, mode: entry.mode, uid: entry.uid, uname: entry.uname,
              linkpath: entry.linkpath, data: Buffer.concat(chunks),
            }));
          },
        });
        parser.on('error', reject);
        parser.on('end', () => resolve());
        parser.end(sink.bytes);
      });
      assert.is(seen.length, specs.length);
      specs.forEach((s, i) => {
        const got = seen[i]!;
        assert.is(got.path.replace(/\/$/, ''), s.name);
        assert.is(got.mode, s.mode);
        assert.is(got.uid, s.uid);
        assert.is(got.uname ?? '', s.uname);
        if (s.kind === 'file') assert.ok(got.data.equals(Buffer.alloc(s.size, s.size & 0xff)));
        if (s.kind === 'symlink') assert.is(got.linkpath, s.target);
        assert.is(got.type, { file: 'File', symlink: 'SymbolicLink', directory: 'Directory' }[s.kind]);
      });
    },
  ), { numRuns: 60 });
});

test('GNU tar lists long, split and non-ASCII names as written', async () => {
  if (!havePeer('tar')) return;
  const tmp = tempDir();
  try {
    const sink = new Sink();
    const tar = new TarWriter(sink);
    const names = [`${'a'.repeat(60)}/${'b'.repeat(60)}`, `d/${'x'.repeat(150)}`, 'é/ünï', 'plain'];
    for (const n of names) await tar.addFile({ name: n, size: 1 }, 'z');
    await tar.addSymlink({ name: 'lnk' }, 'T'.repeat(200));
    await tar.addSymlink({ name: 'uni' }, 'é');
    await tar.finish();
    writeFileSync(join(tmp.path, 'a.tar'), sink.bytes);
    const listing = (await runOk('tar', ['-tf', join(tmp.path, 'a.tar')])).toString().split('\n').filter(Boolean);
    assert.equal(listing, [...names, 'lnk', 'uni']);
    const verbose = (await runOk('tar', ['-tvf', join(tmp.path, 'a.tar')])).toString();
    assert.ok(verbose.includes(`lnk -> ${'T'.repeat(200)}`));
    assert.ok(verbose.includes('uni -> é'));
  } finally {
    tmp.remove();
  }
});

test.run();
