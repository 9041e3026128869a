/**
 * A misbehaving registry v2 (node:http) for the faults a real registry will not produce on
 * demand: wrong digests, truncated, oversized and slow bodies, 429 storms, blob redirects to
 * another host, huge and schema-1 manifests. Content lives in memory; faults are switched on
 * and off at run time through `faults`, and every request is recorded (whether it carried
 * Authorization, never its value).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface Faults {
  /** Manifests asked for by digest are served with one byte changed (same length). */
  manifestDigest?: boolean;
  /** Blobs are served with one byte changed (same length). */
  blobDigest?: boolean;
  /** Blobs are served without their last half, with an honest Content-Length. */
  truncatedBlob?: boolean;
  /** Blob responses announce the full length, send `after` bytes and drop the connection, `times` times. */
  cutBlob?: { after: number; times: number };
  /** Blobs come with `extra` more bytes than they have (announced in Content-Length unless `chunked`). */
  oversizedBlob?: { extra: number; chunked?: boolean };
  /** The next `count` requests (any path but /v2/) answer 429 with this Retry-After (seconds). */
  rateLimit?: { count: number; retryAfter?: string };
  /** Blob requests answer 307 to this base URL + the same path (see startBlobHost). */
  redirectBlobs?: string;
  /** Manifest requests answer this many bytes of (valid) JSON. */
  hugeManifest?: number;
  /** Bodies stop after half their bytes for `pauseMs`, then continue. */
  slowBody?: { pauseMs: number };
  /** Manifest requests answer a signed schema 1 manifest. */
  schema1?: boolean;
  /** Range requests are ignored (full body, 200). */
  ignoreRange?: boolean;
  /** Errors come as plain text instead of distribution's JSON. */
  plainTextErrors?: boolean;
}

export interface RecordedRequest {
  method: string;
  path: string;
  authorization: boolean;
  range: string | undefined;
  status: number;
}

export interface StoredManifest {
  bytes: Buffer;
  mediaType: string;
}

export interface BadRegistry {
  port: number;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** `127.0.0.1:PORT`, the registry part of a reference. */
  host: string;
  faults: Faults;
  requests: RecordedRequest[];
  /** Stores a blob; returns its descriptor. */
  addBlob(data: Buffer | string, mediaType?: string): { mediaType: string; digest: string; size: number };
  /** Stores a manifest under its digest and the given tags; returns its descriptor. */
  addManifest(name: string, bytes: Buffer | string, mediaType: string, tags?: string[]): { mediaType: string; digest: string; size: number };
  /** The bytes of a stored blob or manifest (for comparing). */
  blob(digest: string): Buffer | undefined;
  stop(): Promise<void>;
}

export interface BadRegistryOptions {
  /** Require Basic authentication with these credentials. */
  basicAuth?: { username: string; password: string };
}

export const SCHEMA1_MANIFEST = JSON.stringify({
  schemaVersion: 1,
  name: 'library/old',
  tag: 'latest',
  architecture: 'amd64',
  fsLayers: [{ blobSum: 'sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4' }],
  history: [{ v1Compatibility: '{"id":"e45a5af57b00862e5ef5782a9925979a02ba2b12dff832fd0991335f4a11e5c5"}' }],
  signatures: [{ header: { alg: 'ES256' }, signature: 'x', protected: 'y' }],
}, null, 3);

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function flipByte(b: Buffer): Buffer {
  const c = Buffer.from(b);
  if (c.length > 0) c[c.length >> 1] = c[c.length >> 1]! ^ 0x20;
  return c;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Sends `body` with the given status, applying the slow-body fault. */
async function send(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer, faults: Faults, method: string): Promise<void> {
  res.writeHead(status, { 'content-length': String(body.length), ...headers });
  if (method === 'HEAD') return void res.end();
  if (faults.slowBody && body.length > 1) {
    res.write(body.subarray(0, body.length >> 1));
    await sleep(faults.slowBody.pauseMs);
    if (res.destroyed) return;
    res.end(body.subarray(body.length >> 1));
    return;
  }
  res.end(body);
}

export async function startBadRegistry(opts: BadRegistryOptions = {}): Promise<BadRegistry> {
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, StoredManifest>(); // key: name@digest or name:tag
  const faults: Faults = {};
  const requests: RecordedRequest[] = [];

  const error = (res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void => {
    const text = faults.plainTextErrors ? `${message}\n` : JSON.stringify({ errors: [{ code, message, detail: null }] });
    res.writeHead(status, { 'content-type': faults.plainTextErrors ? 'text/plain' : 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
    res.end(text);
  };

  const authorized = (req: IncomingMessage): boolean => {
    if (!opts.basicAuth) return true;
    const want = `Basic ${Buffer.from(`${opts.basicAuth.username}:${opts.basicAuth.password}`).toString('base64')}`;
    return req.headers.authorization === want;
  };

  const serveBlob = async (req: IncomingMessage, res: ServerResponse, digest: string, method: string): Promise<void> => {
    const stored = blobs.get(digest);
    if (!stored) return error(res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry');
    let body = stored;
    if (faults.blobDigest) body = flipByte(body);
    if (faults.truncatedBlob) body = body.subarray(0, body.length >> 1);
    if (faults.oversizedBlob) body = Buffer.concat([body, Buffer.alloc(faults.oversizedBlob.extra, 0x41)]);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'docker-content-digest': digest, etag: `"${digest}"`, 'accept-ranges': 'bytes' };
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let status = 200;
    let offset = 0;
    if (range && !faults.ignoreRange) {
      offset = Number(range[1]);
      if (offset >= body.length) return error(res, 416, 'RANGE_INVALID', 'range not satisfiable', { 'content-range': `bytes */${body.length}` });
      status = 206;
      headers['content-range'] = `bytes ${offset}-${body.length - 1}/${body.length}`;
    }
    const part = body.subarray(offset);
    if (faults.oversizedBlob?.chunked) {
      res.writeHead(status, headers);
      if (method !== 'HEAD') res.end(part);
      else res.end();
      return;
    }
    const cut = faults.cutBlob;
    if (cut && cut.times > 0 && method !== 'HEAD') {
      cut.times--;
      res.writeHead(status, { ...headers, 'content-length': String(part.length) });
      res.write(part.subarray(0, Math.min(cut.after, part.length - 1)));
      // Let the bytes leave before the connection is dropped mid-body.
      await sleep(30);
      res.destroy();
      return;
    }
    await send(res, status, headers, part, faults, method);
  };

  const serveManifest = async (res: ServerResponse, name: string, ref: string, method: string): Promise<void> => {
    if (faults.hugeManifest) {
      const head = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]');
      const pad = Buffer.alloc(Math.max(0, faults.hugeManifest - head.length - 1), 0x20);
      const body = Buffer.concat([head, pad, Buffer.from('}')]);
      return send(res, 200, { 'content-type': 'application/vnd.oci.image.index.v1+json' }, body, faults, method);
    }
    if (faults.schema1) {
      return send(res, 200, { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' }, Buffer.from(SCHEMA1_MANIFEST), faults, method);
    }
    const m = manifests.get(ref.includes(':') ? `${name}@${ref}` : `${name}:${ref}`);
    if (!m) return error(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
    const body = faults.manifestDigest && ref.includes(':') ? flipByte(m.bytes) : m.bytes;
    return send(res, 200, { 'content-type': m.mediaType, 'docker-content-digest': sha256(m.bytes) }, body, faults, method);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const record: RecordedRequest = { method, path, authorization: req.headers.authorization !== undefined, range: req.headers.range, status: 0 };
    requests.push(record);
    res.on('finish', () => { record.status = res.statusCode; });
    res.on('close', () => { record.status ||= res.statusCode; });
    if (!authorized(req)) {
      return error(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': 'Basic realm="bad-registry"' });
    }
    if (path === '/v2/' || path === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0', 'content-length': '2' });
      return void res.end('{}');
    }
    if (faults.rateLimit && faults.rateLimit.count > 0) {
      faults.rateLimit.count--;
      return error(res, 429, 'TOOMANYREQUESTS', 'too many requests', {
        'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0;w=21600',
        ...(faults.rateLimit.retryAfter !== undefined ? { 'retry-after': faults.rateLimit.retryAfter } : {}),
      });
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(path);
    if (!m || (method !== 'GET' && method !== 'HEAD')) return error(res, 404, 'NOT_FOUND', 'not found');
    const [, name, kind, ref] = m as unknown as [string, string, string, string];
    if (kind === 'manifests') return serveManifest(res, name, ref, method);
    if (faults.redirectBlobs) {
      res.writeHead(307, { location: `${faults.redirectBlobs.replace(/\/$/, '')}${path}?X-Signature=abc123`, 'content-length': '0' });
      return void res.end();
    }
    return serveBlob(req, res, ref, method);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  const port = await listen(server);

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    faults,
    requests,
    addBlob(data, mediaType = 'application/octet-stream') {
      const b = Buffer.from(data);
      const digest = sha256(b);
      blobs.set(digest, b);
      return { mediaType, digest, size: b.length };
    },
    addManifest(name, bytes, mediaType, tags = []) {
      const b = Buffer.from(bytes);
      const digest = sha256(b);
      const entry = { bytes: b, mediaType };
      manifests.set(`${name}@${digest}`, entry);
      for (const t of tags) manifests.set(`${name}:${t}`, entry);
      return { mediaType, digest, size: b.length };
    },
    blob(digest) {
      return blobs.get(digest) ?? [...manifests.entries()].find(([k]) => k.endsWith(`@${digest}`))?.[1].bytes;
    },
    stop: () => close(server),
  };
}

export interface BlobHost {
  port: number;
  /** Base URL on another origin (`http://localhost:PORT`) to give `faults.redirectBlobs`. */
  url: string;
  /** Requests that arrived, and whether each carried Authorization (never its value). */
  requests: RecordedRequest[];
  stop(): Promise<void>;
}

/**
 * A "CDN" for redirected blobs: serves the registry's blobs at the same paths, on a different
 * origin, and records whether any request carried credentials.
 */
export async function startBlobHost(registry: BadRegistry): Promise<BlobHost> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const record: RecordedRequest = { method: req.method ?? 'GET', path, authorization: req.headers.authorization !== undefined || req.headers.cookie !== undefined, range: req.headers.range, status: 0 };
    requests.push(record);
    const m = /^\/v2\/.+\/blobs\/([^/]+)$/.exec(path);
    const body = m ? registry.blob(m[1]!) : undefined;
    if (!body) {
      record.status = 404;
      res.writeHead(404, { 'content-length': '0' });
      return void res.end();
    }
    record.status = 200;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  const port = await listen(server);
  return { port, url: `http://localhost:${port}`, requests, stop: () => close(server) };
}

/** Builds a config + manifest for `layers` in the registry; returns the manifest's descriptor. */
export function addImage(
  reg: BadRegistry,
  name: string,
  spec: { layers: Array<Buffer | string>; platform?: { os: string; architecture: string; variant?: string }; tags?: string[]; oci?: boolean },
): { mediaType: string; digest: string; size: number; config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> } {
  const oci = spec.oci ?? true;
  const platform = spec.platform ?? { os: 'linux', architecture: 'amd64' };
  const layerType = oci ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.docker.image.rootfs.diff.tar.gzip';
  const layers = spec.layers.map((l) => reg.addBlob(l, layerType));
  const config = reg.addBlob(JSON.stringify({
    architecture: platform.architecture, os: platform.os, ...(platform.variant ? { variant: platform.variant } : {}),
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, config: {},
  }), oci ? 'application/vnd.oci.image.config.v1+json' : 'application/vnd.docker.container.image.v1+json');
  const mediaType = oci ? 'application/vnd.oci.image.manifest.v1+json' : 'application/vnd.docker.distribution.manifest.v2+json';
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType, config, layers });
  const d = reg.addManifest(name, manifest, mediaType, spec.tags);
  return { ...d, config, layers };
}
