/** Images for the fixture v1 registry, built from a small spec: layer tars made by hand. */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { num, type FJson, type FObject } from './json-text.js';

export interface V1LayerSpec {
  /** Files in the layer tar: path → content. */
  files?: Record<string, string | Buffer>;
  /** Serve the layer gzip-compressed (Docker Hub's v1 layers often were). */
  gzip?: boolean;
  /** Keys added to (or replacing keys of) the generated layer json. */
  json?: FObject;
  /** Raw text served as this layer's json instead (to test bad json). */
  jsonText?: string;
}

export interface V1ImageSpec {
  name: string;
  tags: string[];
  /** Base layer first. */
  layers: V1LayerSpec[];
  /** Makes ids differ between otherwise equal specs. */
  seed?: string;
  /** Raw text served as the ancestry instead of the real one (to test broken ancestries). */
  ancestryText?: string;
}

export interface V1FixtureLayer {
  id: string;
  /** The layer json before any per-request variation. */
  json: FObject;
  /** Bytes served for /layer. */
  tar: Buffer;
  jsonText?: string;
}

export interface V1FixtureImage {
  name: string;
  /** tag → image id. */
  tags: Record<string, string>;
  /** The image id (top layer). */
  id: string;
  /** Top first, as the registry serves it. */
  ancestry: string[];
  ancestryText?: string;
  layers: Map<string, V1FixtureLayer>;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** A ustar archive of regular files (mode 0644, owner 0, mtime 1), ending in two zero blocks. */
export function makeTar(files: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const data = typeof content === 'string' ? Buffer.from(content) : content;
    const h = Buffer.alloc(512);
    h.write(name, 0, 100);
    h.write(octal(0o644, 8), 100);
    h.write(octal(0, 8), 108);
    h.write(octal(0, 8), 116);
    h.write(octal(data.length, 12), 124);
    h.write(octal(1, 12), 136);
    h.fill(' ', 148, 156);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(octal(sum, 7) + ' ', 148);
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** Deterministic pseudo-random bytes (for layers big enough to break mid-transfer). */
export function noise(size: number, seed = 'noise'): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < size; off += 32) {
    block.copy(out, off, 0, Math.min(32, size - off));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

function containerConfig(parent: string, cmd: string[]): FObject {
  return {
    Hostname: 'a1b2c3d4e5f6', Domainname: '', User: '', Memory: 0, MemorySwap: 0, CpuShares: 0, Cpuset: '',
    AttachStdin: false, AttachStdout: false, AttachStderr: false, PortSpecs: null, ExposedPorts: null, Tty: false,
    OpenStdin: false, StdinOnce: false, Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    Cmd: cmd, Image: parent, Volumes: null, VolumeDriver: '', WorkingDir: '', Entrypoint: null, NetworkDisabled: false,
    MacAddress: '', OnBuild: null, Labels: {},
  };
}

/** Builds ids, layer jsons (Docker 1.6 style) and tars; the last layer of the spec is the image. */
export function buildV1Image(spec: V1ImageSpec): V1FixtureImage {
  const layers = new Map<string, V1FixtureLayer>();
  const chain: string[] = [];
  let parent = '';
  spec.layers.forEach((l, i) => {
    const plain = makeTar(l.files ?? {});
    const tar = l.gzip ? gzipSync(plain) : plain;
    const id = createHash('sha256').update(`${spec.seed ?? ''}\0${spec.name}\0${i}\0${parent}\0`).update(tar).digest('hex');
    const cmd = ['/bin/sh', '-c', `#(nop) ADD file:${createHash('sha256').update(plain).digest('hex')} in /`];
    const json: FObject = {
      id,
      ...(parent ? { parent } : {}),
      created: `2015-06-0${1 + (i % 9)}T12:34:56.${String(123456789 + i)}Z`,
      container: createHash('sha256').update(`container ${id}`).digest('hex'),
      container_config: containerConfig(parent, cmd),
      docker_version: '1.6.2',
      config: { ...containerConfig(parent, i === spec.layers.length - 1 ? ['/bin/sh'] : cmd), Hostname: '' },
      architecture: 'amd64',
      os: 'linux',
      Size: num(String(plain.length)),
      ...(l.json ?? {}),
    };
    const layer: V1FixtureLayer = { id, json, tar };
    if (l.jsonText !== undefined) layer.jsonText = l.jsonText;
    layers.set(id, layer);
    chain.unshift(id);
    parent = id;
  });
  const top = chain[0];
  if (top === undefined) throw new Error('an image needs at least one layer');
  const tags: Record<string, string> = {};
  for (const t of spec.tags) tags[t] = top;
  const image: V1FixtureImage = { name: spec.name, tags, id: top, ancestry: chain, layers };
  if (spec.ancestryText !== undefined) image.ancestryText = spec.ancestryText;
  return image;
}

export type { FJson };
