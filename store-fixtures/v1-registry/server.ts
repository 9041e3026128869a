/**
 * A Docker registry API v1 for tests, in three roles on three loopback ports:
 * - index:    GET /v1/repositories/<name>/images — issues X-Docker-Token, names the registry
 *             in X-Docker-Endpoints, optionally demands Basic credentials;
 * - registry: tags, ancestry, json, layer — demands `Authorization: Token`, hands out a
 *             session cookie on the first request of a token and demands it afterwards,
 *             302s layer requests to storage;
 * - storage:  the layer bytes at signed URLs, with Range, and optionally a connection that
 *             dies mid-body the first time each layer is asked for.
 * In "unstable" mode (Docker Hub, 2015) every layer json answer differs in key order,
 * whitespace, escaping and default-valued keys, while meaning the same.
 * Every request is logged with its headers, so tests can check who was sent what.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { V1FixtureImage } from './image.js';
import { FIXED_STYLE, randomStyle, rng, shuffleDefaults, writeJson, type Rng } from './json-text.js';

export type Role = 'index' | 'registry' | 'storage';

export interface V1RegistryOptions {
  images: V1FixtureImage[];
  /** Issue X-Docker-Token on the index (default true). */
  issueToken?: boolean;
  /** Registry demands `Authorization: Token` (default: when tokens are issued). */
  requireToken?: boolean;
  /** Registry refuses every token (403), as with an expired or forged one. */
  rejectTokens?: boolean;
  /** Index demands Basic credentials. */
  credentials?: { username: string; password: string };
  /** X-Docker-Endpoints: 'registry' (default, the registry role's host:port), 'none', or a literal value. */
  endpoints?: 'registry' | 'none' | string;
  /** Registry demands the session cookie after the first request of each token (default true). */
  requireCookie?: boolean;
  /** 302 layer requests to the storage role (default true). */
  redirectLayers?: boolean;
  /** Break the first transfer of each layer after this many bytes (or half the layer, if true). */
  dropLayerOnce?: boolean | number;
  /** Vary every layer json answer as Docker Hub did. */
  unstable?: boolean;
  /** Seed of the unstable variations (default 1). */
  seed?: number;
}

export interface LoggedRequest {
  role: Role;
  method: string;
  /** Path and query. */
  url: string;
  headers: IncomingMessage['headers'];
  status: number;
}

export interface V1Registry {
  indexUrl: string;
  registryUrl: string;
  storageUrl: string;
  log: LoggedRequest[];
  /** Tokens the index handed out (to check none leaked). */
  tokens: string[];
  close(): Promise<void>;
}

interface State {
  opts: V1RegistryOptions;
  ports: Record<Role, number>;
  log: LoggedRequest[];
  tokens: Map<string, { name: string; cookie: string | undefined }>;
  dropped: Set<string>;
  secret: Buffer;
  rnd: Rng;
}

function send(res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string> = {}): void {
  const data = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(data.length), ...headers });
  res.end(data);
}

function findImage(st: State, name: string): V1FixtureImage | undefined {
  return st.opts.images.find((i) => i.name === name);
}

function findLayer(st: State, id: string) {
  for (const img of st.opts.images) {
    const l = img.layers.get(id);
    if (l) return l;
  }
  return undefined;
}

function sign(st: State, id: string): string {
  return createHmac('sha256', st.secret).update(id).digest('hex');
}

/** Serves bytes with Range support, maybe breaking the connection once per key. */
function serveBytes(st: State, req: IncomingMessage, res: ServerResponse, data: Buffer, key: string): void {
  let start = 0;
  const range = req.headers.range;
  if (range !== undefined) {
    const m = /^bytes=(\d+)-$/.exec(range);
    if (!m || Number(m[1]) >= data.length) {
      send(res, 416, '', { 'Content-Range': `bytes */${data.length}` });
      return;
    }
    start = Number(m[1]);
  }
  const body = data.subarray(start);
  const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length), 'Accept-Ranges': 'bytes' };
  if (range !== undefined) headers['Content-Range'] = `bytes ${start}-${data.length - 1}/${data.length}`;
  res.writeHead(range !== undefined ? 206 : 200, headers);
  const drop = st.opts.dropLayerOnce;
  if (drop !== undefined && drop !== false && !st.dropped.has(key)) {
    st.dropped.add(key);
    const cut = Math.min(body.length - 1, typeof drop === 'number' ? drop : Math.floor(body.length / 2));
    res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 20));
    return;
  }
  res.end(body);
}

function handleIndex(st: State, req: IncomingMessage, res: ServerResponse, path: string): boolean {
  const m = /^\/v1\/repositories\/(.+)\/images$/.exec(path);
  if (!m) return false;
  const { credentials } = st.opts;
  if (credentials) {
    const want = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    if (req.headers.authorization !== want) {
      send(res, 401, '{"error":"login required"}', { 'WWW-Authenticate': 'Basic realm="index"' });
      return true;
    }
  }
  const img = findImage(st, m[1]!);
  if (!img) {
    send(res, 404, '{"error":"repository not found"}');
    return true;
  }
  const headers: Record<string, string> = {};
  if ((st.opts.issueToken ?? true) && req.headers['x-docker-token'] === 'true') {
    const token = `signature=${randomBytes(16).toString('hex')},repository="${img.name}",access=read`;
    st.tokens.set(token, { name: img.name, cookie: undefined });
    headers['X-Docker-Token'] = token;
  }
  const ep = st.opts.endpoints ?? 'registry';
  if (ep === 'registry') headers['X-Docker-Endpoints'] = `127.0.0.1:${st.ports.registry}`;
  else if (ep !== 'none') headers['X-Docker-Endpoints'] = ep;
  send(res, 200, JSON.stringify(img.ancestry.map((id) => ({ id, checksum: '' }))), headers);
  return true;
}

/** Token and cookie checks; answers and returns false when the request is refused. */
function admitted(st: State, req: IncomingMessage, res: ServerResponse): boolean {
  const requireToken = st.opts.requireToken ?? (st.opts.issueToken ?? true);
  if (!requireToken) return true;
  const auth = req.headers.authorization;
  if (auth === undefined || !auth.startsWith('Token ')) {
    send(res, 401, '{"error":"authorization token required"}');
    return false;
  }
  const session = st.tokens.get(auth.slice(6));
  if (!session || st.opts.rejectTokens) {
    send(res, 403, '{"error":"invalid token"}');
    return false;
  }
  if (st.opts.requireCookie ?? true) {
    const cookie = /(?:^|;\s*)session=([0-9a-f]+)/.exec(req.headers.cookie ?? '')?.[1];
    if (session.cookie === undefined) {
      session.cookie = randomBytes(8).toString('hex');
      res.setHeader('Set-Cookie', `session=${session.cookie}; Path=/; HttpOnly`);
    } else if (cookie !== session.cookie) {
      send(res, 403, '{"error":"session cookie required"}');
      return false;
    }
  }
  return true;
}

function handleRegistry(st: State, req: IncomingMessage, res: ServerResponse, path: string): boolean {
  let m: RegExpExecArray | null;
  const unstable = st.opts.unstable === true;
  const style = () => (unstable ? randomStyle(st.rnd) : FIXED_STYLE);
  if ((m = /^\/v1\/repositories\/(.+)\/tags(?:\/([^/]+))?$/.exec(path))) {
    if (!admitted(st, req, res)) return true;
    const img = findImage(st, m[1]!);
    if (!img) send(res, 404, '{"error":"repository not found"}');
    else if (m[2] === undefined) send(res, 200, writeJson(img.tags, style(), st.rnd));
    else if (img.tags[m[2]] === undefined) send(res, 404, '{"error":"Tag not found"}');
    else send(res, 200, writeJson(img.tags[m[2]]!, style(), st.rnd));
    return true;
  }
  if ((m = /^\/v1\/images\/([^/]+)\/(ancestry|json|layer)$/.exec(path))) {
    if (!admitted(st, req, res)) return true;
    const id = m[1]!;
    const layer = findLayer(st, id);
    if (!layer) {
      send(res, 404, '{"error":"Image not found"}');
      return true;
    }
    if (m[2] === 'ancestry') {
      const img = st.opts.images.find((i) => i.layers.has(id))!;
      if (id === img.id && img.ancestryText !== undefined) send(res, 200, img.ancestryText);
      else send(res, 200, writeJson(img.ancestry.slice(img.ancestry.indexOf(id)), style(), st.rnd));
    } else if (m[2] === 'json' && layer.jsonText !== undefined) {
      send(res, 200, layer.jsonText);
    } else if (m[2] === 'json') {
      const json = unstable ? shuffleDefaults(layer.json, st.rnd) : layer.json;
      send(res, 200, writeJson(json, style(), st.rnd), { 'X-Docker-Size': String(layer.tar.length) });
    } else if (st.opts.redirectLayers ?? true) {
      res.writeHead(302, { Location: `http://127.0.0.1:${st.ports.storage}/layers/${id}?sig=${sign(st, id)}`, 'Content-Length': '0' });
      res.end();
    } else serveBytes(st, req, res, layer.tar, id);
    return true;
  }
  return false;
}

function handleStorage(st: State, req: IncomingMessage, res: ServerResponse, url: URL): boolean {
  const m = /^\/layers\/([0-9a-f]{64})$/.exec(url.pathname);
  if (!m) return false;
  const layer = findLayer(st, m[1]!);
  if (!layer || url.searchParams.get('sig') !== sign(st, m[1]!)) {
    send(res, 403, 'signature mismatch');
    return true;
  }
  // A cookie of the storage host's own: it must never travel back to the registry.
  res.setHeader('Set-Cookie', 'cdn=edge42; Path=/');
  serveBytes(st, req, res, layer.tar, m[1]!);
  return true;
}

export async function startV1Registry(opts: V1RegistryOptions): Promise<V1Registry> {
  const st: State = {
    opts, ports: { index: 0, registry: 0, storage: 0 }, log: [], tokens: new Map(), dropped: new Set(),
    secret: randomBytes(16), rnd: rng(opts.seed ?? 1),
  };
  const make = (role: Role): Server => createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fixture');
    res.on('finish', () => st.log.push({ role, method: req.method ?? '', url: req.url ?? '', headers: req.headers, status: res.statusCode }));
    res.on('close', () => {
      if (!res.writableFinished) st.log.push({ role, method: req.method ?? '', url: req.url ?? '', headers: req.headers, status: res.statusCode });
    });
    const handled = req.method === 'GET' && (
      role === 'index' ? handleIndex(st, req, res, url.pathname) || (opts.endpoints === 'none' && handleRegistry(st, req, res, url.pathname))
        : role === 'registry' ? handleRegistry(st, req, res, url.pathname)
          : handleStorage(st, req, res, url));
    if (!handled) send(res, 404, '{"error":"no such endpoint"}');
  });
  const servers = (['index', 'registry', 'storage'] as const).map((role) => [role, make(role)] as const);
  for (const [role, srv] of servers) {
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => resolve());
    });
    st.ports[role] = (srv.address() as AddressInfo).port;
  }
  return {
    indexUrl: `http://127.0.0.1:${st.ports.index}`,
    registryUrl: `http://127.0.0.1:${st.ports.registry}`,
    storageUrl: `http://127.0.0.1:${st.ports.storage}`,
    log: st.log,
    get tokens() {
      return [...st.tokens.keys()];
    },
    close: async () => {
      await Promise.all(servers.map(([, srv]) => new Promise<void>((resolve) => {
        srv.closeAllConnections();
        srv.close(() => resolve());
      })));
    },
  };
}
