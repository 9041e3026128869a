// A read-only HTTP binary cache over the store (or over an exported cache directory).
// Only three URL shapes exist, matched on the raw path by exact patterns, so no request can
// name a file outside the store or the cache directory.
import { createReadStream } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseHash } from '../hash/index.js';
import { dumpPath } from '../nar/index.js';
import { parseStorePath, type LocalStore, type PathInfo } from '../store/index.js';
import { compressionOfUrl, compressor, narExtension, type Compression } from './compression.js';
import { signText, type SecretKey } from './keys.js';
import { fingerprint, formatCacheInfo, formatNarInfo, type NarInfo } from './narinfo.js';

export interface ServeOptions {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Signs every narinfo served (besides the paths' own signatures). */
  signKey?: SecretKey;
  /** How NARs are offered in narinfos; any of .nar, .nar.xz, .nar.zst is served on request. */
  compression?: Compression;
  /** NAR streams served at once; further requests wait their turn (default 8). */
  maxConcurrent?: number;
  /** Serve this exported binary cache directory instead of the store. */
  cacheDir?: string;
  priority?: number;
  log?: (line: string) => void;
}

export interface CacheServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

const NIX32 = '[0-9a-df-np-sv-z]';
const NARINFO_RE = new RegExp(`^/(${NIX32}{32})\\.narinfo$`);
const STORE_NAR_RE = new RegExp(`^/nar/(${NIX32}{32})-(${NIX32}{52})\\.nar(\\.xz|\\.zst)?$`);
const DIR_NAR_RE = new RegExp(`^/nar/(${NIX32}{52})\\.nar(\\.xz|\\.zst)?$`);
const WAITING_LIMIT = 256;

const TYPES = { narinfo: 'text/x-nix-narinfo', nar: 'application/x-nix-nar', cacheInfo: 'text/x-nix-cache-info' } as const;

/** A counting semaphore: at most `n` holders, the rest queue in order. */
class Slots {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly n: number) {}
  get waiting(): number {
    return this.queue.length;
  }
  async acquire(): Promise<() => void> {
    if (this.active >= this.n) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.active--;
      this.queue.shift()?.();
    };
  }
}

/** Maps hash parts to valid store paths; rescans the store on a miss at most once a second. */
class HashIndex {
  private map = new Map<string, string>();
  private scanned = 0;
  constructor(private readonly store: LocalStore) {}
  lookup(hashPart: string): PathInfo | undefined {
    let p = this.map.get(hashPart);
    if (!p && Date.now() - this.scanned > 1000) {
      this.map = new Map(this.store.list().map((i) => [parseStorePath(i.path, this.store.storeDir).hashPart, i.path]));
      this.scanned = Date.now();
      p = this.map.get(hashPart);
    }
    return p ? this.store.pathInfo(p) : undefined;
  }
}

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean, extra: Record<string, string> = {}): void {
  const bytes = Buffer.from(body);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(bytes.length), ...extra });
  res.end(head ? undefined : bytes);
}

/** Serves the store, or `opts.cacheDir`, as a Nix binary cache until close() is called. */
export async function serveStore(store: LocalStore, opts: ServeOptions = {}): Promise<CacheServer> {
  const compression = opts.compression ?? 'none';
  const slots = new Slots(opts.maxConcurrent ?? 8);
  const index = new HashIndex(store);
  const log = opts.log ?? (() => undefined);
  const cacheRoot = opts.cacheDir ? await realpath(opts.cacheDir) : undefined;

  const narInfoFor = (info: PathInfo): string => {
    const narHash = parseHash(info.narHash);
    const hashPart = parseStorePath(info.path, store.storeDir).hashPart;
    const ni: NarInfo = {
      storePath: info.path, url: `nar/${hashPart}-${narHash.nix32}.nar${narExtension(compression)}`, compression,
      narHash, narSize: info.narSize, references: [...info.references].sort(), sigs: [...info.signatures],
    };
    // Uncompressed, the file is the NAR; compressed on the fly, its hash is not known in advance.
    if (compression === 'none') {
      ni.fileHash = narHash;
      ni.fileSize = info.narSize;
    }
    if (info.deriver) ni.deriver = info.deriver;
    if (info.ca) ni.ca = info.ca;
    if (opts.signKey) ni.sigs = [...new Set([...ni.sigs, signText(opts.signKey, fingerprint(info.path, narHash, info.narSize, ni.references))])].sort();
    return formatNarInfo(ni);
  };

  /** A file of the cache directory, only if it really lies inside it and is a regular file. */
  const cacheFile = async (rel: string): Promise<string | undefined> => {
    try {
      const real = await realpath(join(cacheRoot!, rel));
      if (!real.startsWith(cacheRoot! + sep) || !(await lstat(real)).isFile()) return undefined;
      return real;
    } catch {
      return undefined;
    }
  };

  const streamNar = async (res: ServerResponse, head: boolean, body: () => AsyncIterable<Uint8Array>, length: number | undefined, c: Compression): Promise<void> => {
    if (slots.waiting >= WAITING_LIMIT) return send(res, 503, 'text/plain', 'busy\n', head, { 'Retry-After': '5' });
    const release = await slots.acquire();
    try {
      const headers: Record<string, string> = { 'Content-Type': TYPES.nar };
      if (length !== undefined) headers['Content-Length'] = String(length);
      res.writeHead(200, headers);
      if (head) {
        res.end();
        return;
      }
      const comp = compressor(c);
      const src = Readable.from(body());
      await (comp ? pipeline(src, comp, res) : pipeline(src, res));
    } finally {
      release();
    }
  };

  const copies = async function* (real: string): AsyncGenerator<Buffer> {
    for await (const chunk of dumpPath(real)) yield Buffer.from(chunk); // dumpPath reuses its buffers
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') return send(res, 405, 'text/plain', 'read-only binary cache\n', false, { Allow: 'GET, HEAD' });
    const head = method === 'HEAD';
    const path = (req.url ?? '/').replace(/\?.*$/, '');
    if (path === '/nix-cache-info' && cacheRoot) {
      const f = await cacheFile('nix-cache-info');
      return f ? streamFile(res, head, f, TYPES.cacheInfo) : send(res, 404, 'text/plain', 'not found\n', head);
    }
    if (path === '/nix-cache-info') return send(res, 200, TYPES.cacheInfo, formatCacheInfo(store.storeDir, opts.priority ?? 40), head);
    const ni = NARINFO_RE.exec(path);
    if (ni) {
      if (cacheRoot) {
        const f = await cacheFile(`${ni[1]}.narinfo`);
        return f ? streamFile(res, head, f, TYPES.narinfo) : send(res, 404, 'text/plain', 'no such path\n', head);
      }
      const info = index.lookup(ni[1]!);
      return info ? send(res, 200, TYPES.narinfo, narInfoFor(info), head) : send(res, 404, 'text/plain', 'no such path\n', head);
    }
    if (cacheRoot) {
      const m = DIR_NAR_RE.exec(path);
      const f = m ? await cacheFile(path.slice(1)) : undefined;
      return f ? streamFile(res, head, f, TYPES.nar) : send(res, 404, 'text/plain', 'not found\n', head);
    }
    const m = STORE_NAR_RE.exec(path);
    const info = m ? index.lookup(m[1]!) : undefined;
    // The NAR hash in the URL pins the content: a path that changed since its narinfo is a 404.
    if (!m || !info || parseHash(info.narHash).nix32 !== m[2]) return send(res, 404, 'text/plain', 'not found\n', head);
    const c = compressionOfUrl(path)!;
    await streamNar(res, head, () => copies(store.realPath(info.path)), c === 'none' ? info.narSize : undefined, c);
  };

  const streamFile = async (res: ServerResponse, head: boolean, file: string, type: string): Promise<void> => {
    const st = await lstat(file);
    if (type !== TYPES.nar) {
      res.writeHead(200, { 'Content-Type': type, 'Content-Length': String(st.size) });
      if (head) return void res.end();
      await pipeline(createReadStream(file), res);
      return;
    }
    await streamNar(res, head, () => createReadStream(file, { highWaterMark: 1 << 20 }), st.size, 'none');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const msg = (e as Error).message;
      if ((e as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') log(`${req.method} ${req.url}: ${msg}`);
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n', req.method === 'HEAD');
      else res.destroy();
    });
  });
  server.requestTimeout = 0; // NARs may take long to stream
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    server,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
