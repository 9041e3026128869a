/**
 * `--tarball`: the pulled v1 directory as a deterministic `.tar.gz` that `docker load` and
 * `podman load` accept.
 *
 * pull.nix made `<name>-<tag>.tar.gz` with `tar -C $layer -czf $out .` (mtimes, owners and gzip
 * time stamp of the build machine). Here the same files are archived reproducibly — entries
 * sorted bytewise, mode 0644/0755, uid/gid 0, no user/group names, one fixed mtime, gzip header
 * without name or time — plus the two files today's loaders need, because podman (and Docker
 * since 1.10) read `manifest.json`, not the legacy `repositories` + `<id>/json` layout:
 *
 *   manifest.json     [{"Config":"<sha256>.json","RepoTags":["<name>:<tag>"],"Layers":[...]}]
 *   <sha256>.json     an image config made from the top layer's v1 json the way Docker's
 *                     MakeConfigFromV1Config does it: drop id/parent/Size/parent_id/layer_id/
 *                     throwaway, add rootfs.diff_ids (sha256 of each uncompressed layer.tar,
 *                     base first) and one history entry per layer.
 *
 * Layers stay `<id>/layer.tar` as pulled (loaders decompress gzip layers themselves).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { Hash } from '../../hash/index.js';
import { dumpPyJson, parsePyJson, type PyJson, type PyObject } from '../../image/detjson.js';
import { checkV1ImageId } from './names.js';

export interface V1TarballOptions {
  /** The directory pullV1 made. */
  dir: string;
  /** Where to write the .tar.gz. */
  dest: string;
  name: string;
  tag: string;
  /** The ancestry as pullV1 returned it: the image first, its base last. */
  layers: readonly string[];
  /** mtime of every entry, seconds since the epoch (default 0). */
  mtime?: number;
  /**
   * gzip the archive (default true, pull.nix's .tar.gz). A plain .tar is for loaders that cannot
   * read compressed archives: Debian bookworm's podman 4.3.1 fails on any gzip docker-archive.
   */
  gzip?: boolean;
}

export interface V1TarballResult {
  /** Bytes of the archive and their sha256 (the flat hash to pin). */
  size: number;
  hash: Hash;
  /** The config file name inside the archive (`<sha256>.json`). */
  config: string;
  diffIds: string[];
}

// ------------------------------------------------------------------ a minimal ustar writer

const BLOCK = 512;

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, type: 'file' | 'dir', size: number, mtime: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name '${name}' is longer than 100 bytes`);
  b.write(name, 0, 100, 'utf8');
  b.write(octal(type === 'dir' ? 0o755 : 0o644, 8), 100, 'ascii');
  b.write(octal(0, 8), 108, 'ascii');
  b.write(octal(0, 8), 116, 'ascii');
  if (size < 8 ** 11) b.write(octal(size, 12), 124, 'ascii');
  else {
    // GNU base-256 for sizes of 8 GiB and more.
    b[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      b[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  b.write(octal(mtime, 12), 136, 'ascii');
  b.fill(' ', 148, 156);
  b.write(type === 'dir' ? '5' : '0', 156, 'ascii');
  b.write('ustar\0', 257, 'ascii');
  b.write('00', 263, 'ascii');
  b.write(octal(0, 8), 329, 'ascii');
  b.write(octal(0, 8), 337, 'ascii');
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(octal(sum, 7) + ' ', 148, 'ascii');
  return b;
}

type Entry = { name: string; type: 'dir' } | { name: string; type: 'file'; data: Buffer } | { name: string; type: 'file'; path: string; size: number };

async function* tarStream(entries: Entry[], mtime: number): AsyncGenerator<Buffer> {
  for (const e of entries) {
    if (e.type === 'dir') {
      yield header(e.name, 'dir', 0, mtime);
      continue;
    }
    const size = 'data' in e ? e.data.length : e.size;
    yield header(e.name, 'file', size, mtime);
    if ('data' in e) yield e.data;
    else {
      let seen = 0;
      for await (const chunk of createReadStream(e.path) as AsyncIterable<Buffer>) {
        seen += chunk.length;
        if (seen > size) throw new Error(`'${e.path}' grew while being archived`);
        yield chunk;
      }
      if (seen !== size) throw new Error(`'${e.path}' shrank while being archived`);
    }
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(2 * BLOCK);
}

// ------------------------------------------------------------------ config and manifest

/** sha256 of the layer as a tar: gzip layers are hashed decompressed; xz/bzip2 cannot be. */
async function diffId(path: string): Promise<string> {
  const fh = await open(path, 'r');
  const magic = Buffer.alloc(6);
  try {
    await fh.read(magic, 0, 6, 0);
  } finally {
    await fh.close();
  }
  if (magic[0] === 0x42 && magic[1] === 0x5a && magic[2] === 0x68) throw new Error(`'${path}' is bzip2-compressed: its diff id cannot be computed here`);
  if (magic.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) throw new Error(`'${path}' is xz-compressed: its diff id cannot be computed here`);
  const h = createHash('sha256');
  const sink = new Transform({
    transform(chunk: Buffer, _enc, done) {
      h.update(chunk);
      done();
    },
  });
  const gz = magic[0] === 0x1f && magic[1] === 0x8b;
  try {
    if (gz) await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), createGunzip({ chunkSize: 1 << 20 }), sink);
    else await pipeline(createReadStream(path), sink);
  } catch (err) {
    throw new Error(`cannot read layer '${path}': ${(err as Error).message}`);
  }
  return `sha256:${h.digest('hex')}`;
}

function str(v: PyJson | undefined): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function historyEntry(json: PyObject): PyObject {
  const h: PyObject = new Map();
  const created = json.get('created');
  if (typeof created === 'string') h.set('created', created);
  const cc = json.get('container_config');
  const cmd = cc instanceof Map ? cc.get('Cmd') : undefined;
  if (Array.isArray(cmd) && cmd.length > 0 && cmd.every((c) => typeof c === 'string')) h.set('created_by', cmd.join(' '));
  const author = str(json.get('author'));
  if (author !== undefined) h.set('author', author);
  const comment = str(json.get('comment'));
  if (comment !== undefined) h.set('comment', comment);
  return h;
}

/** The image config: the top layer's json minus v1-only keys, plus rootfs and history. */
export function v1ImageConfig(layerJsons: readonly PyObject[], diffIds: readonly string[]): string {
  const top = layerJsons[0];
  if (!top) throw new Error('an image needs at least one layer');
  const config: PyObject = new Map(top);
  for (const k of ['id', 'parent', 'Size', 'parent_id', 'layer_id', 'throwaway']) config.delete(k);
  config.set('rootfs', new Map<string, PyJson>([['type', 'layers'], ['diff_ids', [...diffIds]]]));
  config.set('history', [...layerJsons].reverse().map(historyEntry));
  return dumpPyJson(config);
}

/** Writes the deterministic .tar.gz (or .tar) of a pulled v1 directory. */
export async function writeV1Tarball(opts: V1TarballOptions): Promise<V1TarballResult> {
  if (opts.layers.length === 0) throw new Error('writeV1Tarball: no layers');
  const ids = opts.layers.map((id) => checkV1ImageId(id, 'layer id'));
  const mtime = opts.mtime ?? 0;
  const base = [...ids].reverse();

  const jsons: PyObject[] = [];
  for (const id of ids) {
    const where = join(opts.dir, id, 'json');
    const tree = parsePyJson(await readFile(where), where);
    if (!(tree instanceof Map)) throw new Error(`${where}: not a JSON object`);
    jsons.push(tree);
  }
  const diffIds: string[] = [];
  for (const id of base) diffIds.push(await diffId(join(opts.dir, id, 'layer.tar')));

  const configText = v1ImageConfig(jsons, diffIds);
  const config = `${createHash('sha256').update(configText).digest('hex')}.json`;
  const manifest = JSON.stringify([{ Config: config, RepoTags: [`${opts.name}:${opts.tag}`], Layers: base.map((id) => `${id}/layer.tar`) }]);

  const entries: Entry[] = [
    { name: config, type: 'file', data: Buffer.from(configText) },
    { name: 'manifest.json', type: 'file', data: Buffer.from(manifest) },
    { name: 'repositories', type: 'file', data: await readFile(join(opts.dir, 'repositories')) },
  ];
  for (const id of ids) {
    entries.push({ name: `${id}/`, type: 'dir' });
    for (const f of ['VERSION', 'json']) entries.push({ name: `${id}/${f}`, type: 'file', data: await readFile(join(opts.dir, id, f)) });
    const layer = join(opts.dir, id, 'layer.tar');
    entries.push({ name: `${id}/layer.tar`, type: 'file', path: layer, size: (await stat(layer)).size });
  }
  entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));

  const h = createHash('sha256');
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      h.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  // Node's gzip header carries no file name and a zero time stamp; level fixed for stable bytes.
  const source = Readable.from(tarStream(entries, mtime));
  if (opts.gzip ?? true) await pipeline(source, createGzip({ level: 6 }), count, createWriteStream(opts.dest));
  else await pipeline(source, count, createWriteStream(opts.dest));
  return { size, hash: new Hash('sha256', h.digest()), config, diffIds };
}
