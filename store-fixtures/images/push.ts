import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

/**
 * Pushes an OCI layout's image into a registry over the distribution API: blobs by monolithic
 * upload, child manifests by digest, the top manifest by tag. Going straight to the API (not
 * `skopeo copy`) keeps every manifest byte as generated: skopeo may re-serialise or convert a
 * manifest on the way, which would change the digests the tests pin.
 */

export interface PushOptions {
  /** Basic-auth credentials. */
  auth?: { username: string; password: string };
  /** PEM of a CA to trust, for a registry with a self-signed certificate. */
  ca?: string | Buffer;
}

interface Descriptor { mediaType: string; digest: string; size: number; urls?: unknown }

interface Response { status: number; headers: IncomingMessage['headers']; body: Buffer }

function send(url: URL, method: string, headers: Record<string, string>, body: Buffer | string | null, opts: PushOptions): Promise<Response> {
  const auth = opts.auth ? { authorization: `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}` } : {};
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...auth, ...headers }, ...(opts.ca ? { ca: opts.ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (body === null) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else pipeline(createReadStream(body), req).catch(reject); // a path: stream the file
  });
}

function expect(res: Response, want: number, what: string): void {
  if (res.status !== want) throw new Error(`${what}: HTTP ${res.status} ${res.body.toString().slice(0, 500)}`);
}

async function pushBlob(base: URL, name: string, layout: string, d: Descriptor, opts: PushOptions): Promise<void> {
  const head = await send(new URL(`/v2/${name}/blobs/${d.digest}`, base), 'HEAD', {}, null, opts);
  if (head.status === 200) return;
  const start = await send(new URL(`/v2/${name}/blobs/uploads/`, base), 'POST', { 'content-length': '0' }, null, opts);
  expect(start, 202, `start upload of ${d.digest}`);
  const location = new URL(String(start.headers.location), base);
  location.searchParams.set('digest', d.digest);
  const path = join(layout, 'blobs', 'sha256', d.digest.slice('sha256:'.length));
  const { size } = await stat(path);
  const put = await send(location, 'PUT', { 'content-type': 'application/octet-stream', 'content-length': String(size) }, path, opts);
  expect(put, 201, `upload of ${d.digest}`);
}

async function pushManifest(base: URL, name: string, layout: string, d: Descriptor, ref: string, opts: PushOptions): Promise<void> {
  const bytes = await readFile(join(layout, 'blobs', 'sha256', d.digest.slice('sha256:'.length)));
  const m = JSON.parse(bytes.toString()) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
  for (const child of m.manifests ?? []) await pushManifest(base, name, layout, child, child.digest, opts);
  for (const blob of [...(m.config ? [m.config] : []), ...(m.layers ?? [])]) {
    if (blob.urls === undefined) await pushBlob(base, name, layout, blob, opts);
  }
  const res = await send(new URL(`/v2/${name}/manifests/${ref}`, base), 'PUT',
    { 'content-type': d.mediaType, 'content-length': String(bytes.length) }, bytes, opts);
  expect(res, 201, `manifest ${d.digest} as ${name}:${ref}`);
  const stored = res.headers['docker-content-digest'];
  if (stored !== undefined && stored !== d.digest) throw new Error(`registry stored ${name}:${ref} as ${String(stored)}, expected ${d.digest}`);
}

/**
 * Pushes the image tagged `tag` in `layoutDir` (default: the layout's only image) to
 * `<registry>/<name>:<tag>`. `registry` is a port on 127.0.0.1 or a base URL. Returns the top digest.
 */
export async function pushImage(layoutDir: string, registry: number | string, name: string, tag: string, opts: PushOptions & { sourceTag?: string } = {}): Promise<string> {
  const base = new URL(typeof registry === 'number' ? `http://127.0.0.1:${registry}` : registry);
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests: (Descriptor & { annotations?: Record<string, string> })[] };
  const wanted = opts.sourceTag;
  const top = wanted === undefined && index.manifests.length === 1
    ? index.manifests[0]
    : index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === (wanted ?? tag));
  if (!top) throw new Error(`${layoutDir} has no image tagged ${wanted ?? tag}`);
  await pushManifest(base, name, layoutDir, top, tag, opts);
  return top.digest;
}
