import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { TarWriter } from '../../lib/image/index.js';

/** One entry of a generated layer. Times default to FIXED_MTIME, owners to root. */
export type EntrySpec =
  | { type: 'file'; path: string; content?: string | Buffer; mode?: number; uid?: number; gid?: number; mtime?: number }
  /** `size` bytes of seeded pseudo-random data, generated as a stream. */
  | { type: 'random'; path: string; size: number; seed: number; mode?: number; mtime?: number }
  /** `size` bytes of seeded pseudo-text: compresses about as well as real files (~3:1 with gzip). */
  | { type: 'text'; path: string; size: number; seed: number; mode?: number; mtime?: number }
  | { type: 'dir'; path: string; mode?: number; uid?: number; gid?: number; mtime?: number }
  | { type: 'symlink'; path: string; target: string; mtime?: number }
  | { type: 'hardlink'; path: string; target: string; mtime?: number };

export type Compression = 'gzip' | 'zstd' | 'none';

/** 2024-01-01T00:00:00Z: fixtures carry a fixed time so every run makes the same bytes. */
export const FIXED_MTIME = 1704067200;

// xorshift32 bytes: cheap, seeded, incompressible enough to make a layer of real size.
async function* randomBytes(size: number, seed: number): AsyncGenerator<Buffer> {
  let x = seed >>> 0 || 0x9e3779b9;
  for (let left = size; left > 0;) {
    const n = Math.min(left, 1 << 16);
    const buf = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13; x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5; x >>>= 0;
      buf[i] = x & 0xff;
    }
    left -= n;
    yield buf;
  }
}

const SYLLABLES = ['lib', 'usr', 'share', 'conf', 'ing', 'tion', 'er', 'al', 'ent', 'pre', 'com', 'ex', 'struct', 'void', 'int', 'char',
  'return', 'if', 'else', 'for', 'the', 'and', 'of', 'to', 'in', 'is', 'on', 'data', 'file', 'path', 'node', 'ver', '0', '1', '2', '3'];

// Words of random syllables separated by spaces, newlines and punctuation, from a xorshift32.
async function* pseudoText(size: number, seed: number): AsyncGenerator<Buffer> {
  let x = seed >>> 0 || 0x9e3779b9;
  const next = () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
  for (let left = size; left > 0;) {
    const n = Math.min(left, 1 << 16);
    let text = '';
    while (text.length < n) {
      const r = next();
      text += SYLLABLES[r % SYLLABLES.length]! + SYLLABLES[(r >>> 8) % SYLLABLES.length]!;
      text += (r >>> 16) % 11 === 0 ? '\n' : (r >>> 16) % 7 === 0 ? '_' : ' ';
    }
    left -= n;
    yield Buffer.from(text.slice(0, n), 'latin1');
  }
}

/** Writes an uncompressed layer tar made of `entries`, in the order given. */
export async function writeLayerTar(entries: readonly EntrySpec[], dest: string): Promise<void> {
  const out = createWriteStream(dest);
  const tar = new TarWriter(out);
  for (const e of entries) {
    const mtime = e.mtime ?? FIXED_MTIME;
    switch (e.type) {
      case 'file': {
        const body = Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content ?? '');
        await tar.addFile({ name: e.path, mode: e.mode ?? 0o644, uid: e.uid ?? 0, gid: e.gid ?? 0, mtime, size: body.length }, body);
        break;
      }
      case 'random':
        await tar.addFile({ name: e.path, mode: e.mode ?? 0o644, mtime, size: e.size }, randomBytes(e.size, e.seed));
        break;
      case 'text':
        await tar.addFile({ name: e.path, mode: e.mode ?? 0o644, mtime, size: e.size }, pseudoText(e.size, e.seed));
        break;
      case 'dir':
        await tar.addDirectory({ name: e.path.endsWith('/') ? e.path : `${e.path}/`, mode: e.mode ?? 0o755, uid: e.uid ?? 0, gid: e.gid ?? 0, mtime });
        break;
      case 'symlink':
        await tar.addSymlink({ name: e.path, mode: 0o777, mtime }, e.target);
        break;
      case 'hardlink':
        await tar.addHardlink({ name: e.path, mode: 0o644, mtime }, e.target);
        break;
    }
  }
  await tar.finish();
  out.end();
  await once(out, 'close');
}

/** Compresses `src` into `dest`: gzip through zlib (level 6, no name, mtime 0), zstd through the `zstd` binary. */
export async function compressFile(src: string, dest: string, compression: Compression): Promise<void> {
  if (compression === 'gzip') {
    await pipeline(createReadStream(src), createGzip({ level: 6 }), createWriteStream(dest));
    return;
  }
  if (compression === 'none') {
    await pipeline(createReadStream(src), createWriteStream(dest));
    return;
  }
  const child = spawn('zstd', ['-q', '-3', '-c', src], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  exited.catch(() => undefined); // observed below; this only keeps an early failure from being "unhandled"
  await pipeline(child.stdout, createWriteStream(dest));
  const code = await exited;
  if (code !== 0) throw new Error(`zstd exited ${code}: ${stderr}`);
}
