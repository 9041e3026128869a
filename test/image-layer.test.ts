import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { decompressLayer, sniffCompression, uncompressLayerToFile } from '../lib/image/index.js';
import { havePeer } from './helpers/peers.js';
import { runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';

// Layer blobs → uncompressed bytes, sniffed by magic number like containers/image does.

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of chunks) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

// Feeds a buffer in small pieces, so sniffing must gather its magic across chunks.
async function* pieces(b: Buffer, size = 1): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

const DATA = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7919) % 251));

test('magic numbers', () => {
  assert.is(sniffCompression(gzipSync(Buffer.from('x'))), 'gzip');
  assert.is(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0])), 'zstd');
  assert.is(sniffCompression(Buffer.from('BZh91AY')), 'bzip2');
  assert.is(sniffCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])), 'xz');
  assert.is(sniffCompression(Buffer.from('ustar')), 'none');
  assert.is(sniffCompression(Buffer.alloc(0)), 'none');
});

test('gzip (also multi-member), uncompressed and empty inputs, fed byte by byte', async () => {
  assert.ok((await collect(decompressLayer(pieces(gzipSync(DATA), 3)))).equals(DATA));
  const twoMembers = Buffer.concat([gzipSync(DATA.subarray(0, 1000)), gzipSync(DATA.subarray(1000))]);
  assert.ok((await collect(decompressLayer(pieces(twoMembers, 4096)))).equals(DATA));
  assert.ok((await collect(decompressLayer(pieces(DATA.subarray(0, 5000), 1)))).equals(DATA.subarray(0, 5000)));
  assert.is((await collect(decompressLayer(pieces(Buffer.alloc(0))))).length, 0);
});

test('zstd from the zstd binary (several frames, checksums on) decodes to the same bytes', async () => {
  if (!havePeer('zstd')) return;
  const tmp = tempDir();
  try {
    writeFileSync(join(tmp.path, 'a'), DATA.subarray(0, 30_000));
    writeFileSync(join(tmp.path, 'b'), DATA.subarray(30_000));
    const frames = Buffer.concat([
      await runOk('zstd', ['-q', '-c', '-19', '--check', join(tmp.path, 'a')]),
      await runOk('zstd', ['-q', '-c', '-1', join(tmp.path, 'b')]),
    ]);
    assert.ok((await collect(decompressLayer(pieces(frames, 7)))).equals(DATA));
  } finally {
    tmp.remove();
  }
});

test('a consumer that stops early closes the source stream', async () => {
  const tmp = tempDir();
  try {
    for (const body of [gzipSync(DATA), DATA]) {
      writeFileSync(join(tmp.path, 'blob'), body);
      const source = createReadStream(join(tmp.path, 'blob'), { highWaterMark: 1024 });
      for await (const chunk of decompressLayer(source)) {
        assert.ok(chunk.length > 0);
        break;
      }
      await new Promise((r) => setImmediate(r));
      assert.ok(source.destroyed, 'source left open');
    }
  } finally {
    tmp.remove();
  }
});

test('uncompressLayerToFile: diff_id and size of the uncompressed bytes; broken input leaves no file', async () => {
  const tmp = tempDir();
  try {
    const dest = join(tmp.path, 'layer.tar');
    const r = await uncompressLayerToFile(pieces(gzipSync(DATA), 1000), dest);
    assert.is(r.size, DATA.length);
    assert.is(r.diffId, `sha256:${createHash('sha256').update(DATA).digest('hex')}`);
    assert.ok(readFileSync(dest).equals(DATA));

    const whole = gzipSync(DATA);
    const truncated = whole.subarray(0, whole.length - 4); // the trailer's length field is gone
    const bad = join(tmp.path, 'bad.tar');
    try {
      await uncompressLayerToFile(pieces(truncated, 500), bad);
      assert.unreachable('truncated gzip accepted');
    } catch (e) {
      assert.match(String(e), /unexpected end|end of file/i);
    }
    assert.not.ok(existsSync(bad));
    try {
      await uncompressLayerToFile(pieces(Buffer.from('BZh91AY&SY....')), bad);
      assert.unreachable('bzip2 accepted');
    } catch (e) {
      assert.match(String(e), /bzip2-compressed layers are not supported/);
    }
    assert.not.ok(existsSync(bad));
  } finally {
    tmp.remove();
  }
});

test.run();
