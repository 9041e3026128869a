// Where binary-cache files are read from: a local directory (or file:// URL) or http(s).
import { createReadStream } from 'node:fs';
import { readFile, readdir, realpath } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDownload, redactUrl, request, type FetchOptions } from '../fetch/index.js';
import { unsafeUrlReason } from './narinfo.js';

const MAX_TEXT = 1 << 20; // a narinfo or nix-cache-info larger than this is not one

export interface BinaryCache {
  /** For messages, without credentials. */
  readonly display: string;
  /** A small file's text, or undefined when the cache does not have it. */
  readText(rel: string): Promise<string | undefined>;
  /** A NAR file's bytes. */
  open(rel: string): Promise<AsyncIterable<Buffer>>;
  /** Hash parts of every narinfo, where the cache can be listed (directories only). */
  listHashParts?(): Promise<string[]>;
}

function checkRel(rel: string, display: string): void {
  const bad = unsafeUrlReason(rel);
  if (bad) throw new Error(`refusing to read '${rel}' from ${display}: ${bad}`);
}

class DirCache implements BinaryCache {
  readonly display: string;
  constructor(private readonly root: string) {
    this.display = root;
  }

  /** The real location of `rel`, which must stay inside the cache even through symlinks. */
  private async locate(rel: string): Promise<string | undefined> {
    checkRel(rel, this.display);
    let real: string;
    try {
      real = await realpath(resolve(this.root, rel));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const root = await realpath(this.root);
    if (!real.startsWith(root + sep)) throw new Error(`refusing to read '${rel}' from ${this.display}: it resolves outside the cache`);
    return real;
  }

  async readText(rel: string): Promise<string | undefined> {
    const p = await this.locate(rel);
    if (!p) return undefined;
    const b = await readFile(p);
    if (b.length > MAX_TEXT) throw new Error(`${this.display}/${rel} is ${b.length} bytes: too large for a cache text file`);
    return b.toString('utf8');
  }

  async open(rel: string): Promise<AsyncIterable<Buffer>> {
    const p = await this.locate(rel);
    if (!p) throw new Error(`${this.display}/${rel} does not exist`);
    return createReadStream(p, { highWaterMark: 1 << 20 });
  }

  async listHashParts(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new Error(`no binary cache at ${this.root} (no nix-cache-info: the directory does not exist)`);
      if (code === 'ENOTDIR') throw new Error(`no binary cache at ${this.root} (no nix-cache-info: not a directory)`);
      if (code === 'EACCES') throw new Error(`cannot read binary cache ${this.root}: permission denied`);
      throw e;
    }
    return names.filter((f) => /^[0-9a-df-np-sv-z]{32}\.narinfo$/.test(f)).map((f) => f.slice(0, 32)).sort();
  }
}

class HttpCache implements BinaryCache {
  readonly display: string;
  private readonly base: string;
  constructor(url: string, private readonly opts: FetchOptions) {
    this.base = url.endsWith('/') ? url : `${url}/`;
    this.display = redactUrl(url);
  }

  async readText(rel: string): Promise<string | undefined> {
    checkRel(rel, this.display);
    const res = await request(this.base + rel, {}, this.opts);
    if (res.status === 404 || res.status === 403 || res.status === 410) {
      res.body.resume();
      return undefined;
    }
    if (res.status !== 200) {
      res.body.resume();
      throw new Error(`${this.display}/${rel}: HTTP ${res.status} ${res.statusText}`);
    }
    const parts: Buffer[] = [];
    let n = 0;
    for await (const c of res.body as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > MAX_TEXT) {
        res.body.destroy();
        throw new Error(`${this.display}/${rel} is larger than ${MAX_TEXT} bytes: too large for a cache text file`);
      }
      parts.push(c);
    }
    return Buffer.concat(parts).toString('utf8');
  }

  async open(rel: string): Promise<AsyncIterable<Buffer>> {
    checkRel(rel, this.display);
    return openDownload(this.base + rel, this.opts);
  }
}

/** A cache from a directory path, a `file://` URL or an http(s) URL. */
export function openCache(spec: string, opts: FetchOptions = {}): BinaryCache {
  if (/^https?:\/\//i.test(spec)) return new HttpCache(spec, opts);
  if (/^file:\/\//i.test(spec)) return new DirCache(fileURLToPath(spec.replace(/\?.*$/, '')));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) throw new Error(`unsupported binary cache '${spec}': use a directory, file://, http:// or https://`);
  return new DirCache(resolve(spec));
}
