// Registry sync (lib/sync): the pure parts, then real syncs between two Debian docker-registry
// instances, checked by reading back with the registry client and by skopeo's archives.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { closeDispatchers } from '../lib/fetch/index.js';
import { RegistryClient, parsePlatform } from '../lib/registry/index.js';
import {
  nextLink, parseDestination, parseListFile, parseSize, receivedBytes, syncImages, targetFor,
  type SyncOptions, type SyncSummary,
} from '../lib/sync/index.js';
import { parseReference } from '../lib/registry/index.js';
import { makeImage, makeIndex, pushImage, type BuiltLayout, type LayerSpec } from '../store-fixtures/images/index.js';
import { rejects } from './helpers/assert.js';
import { havePeer } from './helpers/peers.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { runOk } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';

// ---- pure parts -------------------------------------------------------------------------------

test('destination: host keeps source paths, a path is the repository for one image and a prefix for a list', () => {
  const src = parseReference('src.example:5000/team/app:1.0');
  const host = parseDestination('dst.example:5000');
  assert.equal(host, { domain: 'dst.example:5000', path: undefined, tag: undefined, text: 'dst.example:5000' });
  assert.is(targetFor(src, '1.0', host, 'image').ref.name, 'dst.example:5000/team/app');
  const repo = parseDestination('docker://dst.example:5000/mirror/app/');
  assert.is(repo.path, 'mirror/app');
  const one = targetFor(src, '1.0', repo, 'image');
  assert.is(one.ref.name, 'dst.example:5000/mirror/app');
  assert.is(one.tag, '1.0');
  assert.is(targetFor(src, 'x', repo, 'repository').ref.name, 'dst.example:5000/mirror/app');
  assert.is(targetFor(src, undefined, repo, 'list').ref.name, 'dst.example:5000/mirror/app/team/app');
  const tagged = parseDestination('localhost/mirror/app:stable');
  assert.is(tagged.tag, 'stable');
  assert.is(targetFor(src, '1.0', tagged, 'image').tag, 'stable');
  assert.throws(() => targetFor(src, '1.0', tagged, 'list'), /only for a single image/);
  // Docker Hub sources keep library/: a bare host mirrors them as host/library/name.
  assert.is(targetFor(parseReference('alpine:3'), '3', host, 'image').ref.path, 'library/alpine');
  assert.throws(() => parseDestination('mirror/app'), /invalid destination 'mirror\/app': it must start with a registry host/);
  assert.throws(() => parseDestination('h.example/app@sha256:' + 'a'.repeat(64)), /cannot name a digest/);
  assert.throws(() => parseDestination('h.example/App'), /invalid destination 'h.example\/App': repository name must be lowercase/);
  assert.throws(() => parseDestination(''), /empty/);
});

test('list file: pinned references, comments, errors name file and line', () => {
  const d = 'sha256:' + 'b'.repeat(64);
  const entries = parseListFile(`# mirror these\n\nh.example/a@${d}\n  h.example/b:1.2@${d}   # pinned\n`, 'images.txt');
  assert.equal(entries.map((e) => [e.ref.name, e.tag, e.ref.digest, e.line]), [['h.example/a', undefined, d, 3], ['h.example/b', '1.2', d, 4]]);
  assert.throws(() => parseListFile('h.example/a:1\n', 'l.txt'), /^l.txt:1: 'h.example\/a:1' has no digest/);
  assert.throws(() => parseListFile(`\nh.example/a@sha256:12\n`, 'l.txt'), /l.txt:2: invalid image reference/);
  assert.throws(() => parseListFile(`h.example/a@${d} h.example/b@${d}\n`, 'l.txt'), /l.txt:1: expected one reference per line/);
  assert.throws(() => parseListFile(`h.example/a@${d}\nh.example/a@${d}\n`, 'l.txt'), /l.txt:2: .* repeats line 1/);
});

test('sizes, upload ranges, Link pagination', () => {
  assert.is(parseSize('8M', '--chunk-size'), 8 * 1024 * 1024);
  assert.is(parseSize('512KiB', 'x'), 512 * 1024);
  assert.is(parseSize('1048576', 'x'), 1048576);
  assert.is(parseSize('0', 'x'), 0);
  assert.throws(() => parseSize('8 parsecs', '--chunk-size'), /invalid --chunk-size '8 parsecs'/);
  assert.is(receivedBytes('0-1023'), 1024);
  assert.is(receivedBytes('bytes=0-9'), 10);
  assert.is(receivedBytes('0-0'), 0);
  assert.is(receivedBytes(undefined), 0);
  assert.is(nextLink('</v2/a/tags/list?last=x&n=2>; rel="next"'), '/v2/a/tags/list?last=x&n=2');
  assert.is(nextLink('<https://h/a>; rel="prev", <https://h/b>; rel=next'), 'https://h/b');
  assert.is(nextLink(undefined), undefined);
});

// ---- real registries --------------------------------------------------------------------------

const have = () => havePeer('docker-registry') && havePeer('skopeo');
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let tmp: { path: string; remove: () => void };
let src: Registry;
let dst: Registry;
let single: BuiltLayout;
let multi: BuiltLayout;

const layer = (name: string, text: string, random = 0): LayerSpec => ({
  entries: [
    { type: 'dir', path: 'etc' },
    { type: 'file', path: `etc/${name}`, content: text },
    ...(random ? [{ type: 'random' as const, path: `data/${name}.bin`, size: random, seed: name.length * 7 + random }] : []),
  ],
});
const BASE = layer('base', 'shared base\n', 150_000);

function options(o: Partial<SyncOptions> & Pick<SyncOptions, 'source' | 'destination'>): SyncOptions {
  return { src: { tlsVerify: false, credentials: null }, dest: { tlsVerify: false, credentials: null }, fetch: { retries: 1, retryBaseMs: 10 }, ...o };
}

async function manifestAt(reg: Registry, path: string, reference: string): Promise<{ digest: string; bytes: Buffer; mediaType: string }> {
  const c = new RegistryClient(`${reg.host}/${path}${reference.includes(':') ? '@' : ':'}${reference}`, { tlsVerify: false, credentials: null });
  const m = await c.getManifest(reference);
  return { digest: m.digest, bytes: m.bytes, mediaType: m.mediaType };
}

async function getJson(url: string): Promise<unknown> {
  const r = await fetch(url);
  return r.status === 200 ? r.json() : { status: r.status };
}

async function archive(reg: Registry, path: string, digest: string, out: string): Promise<Buffer> {
  await runOk('skopeo', ['--insecure-policy', 'copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/${path}@${digest}`, `docker-archive:${out}:sync/check:1`]);
  return readFileSync(out);
}

test.before(async () => {
  if (!have()) return;
  tmp = tempDir('fi-sync-');
  single = await makeImage(join(tmp.path, 'single'), { mediaTypes: 'docker', layers: [BASE, layer('app', 'app v1\n', 40_000)] }, 'v1');
  multi = await makeIndex(join(tmp.path, 'multi'), {
    images: [
      { layers: [BASE, layer('arch', 'amd64\n')], platform: { os: 'linux', architecture: 'amd64' } },
      { layers: [BASE, layer('arch', 'arm64\n')], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { layers: [BASE, layer('arch', 'armv7\n')], platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    ],
  }, '2.0');
  [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
  await pushImage(single.dir, src.port, 'team/app', 'v1');
  await pushImage(multi.dir, src.port, 'team/multi', '2.0');
});

test.after(async () => {
  if (!have()) return;
  await Promise.all([src?.stop(), dst?.stop()]);
  tmp?.remove();
  await closeDispatchers();
});

test('one image: manifest bytes and digest kept, skopeo archives identical; a re-run sends nothing', async () => {
  if (!have()) return;
  const s = await syncImages(options({ source: { kind: 'image', reference: `${src.host}/team/app:v1` }, destination: dst.host }));
  const r = s.images[0]!;
  assert.is(r.destination, `${dst.host}/team/app:v1`);
  assert.is(r.sourceDigest, single.digest);
  assert.is(r.digest, single.digest);
  assert.equal(r.blobs, { sent: 3, mounted: 0, skipped: 0 });
  const img = single.images[0]!;
  assert.is(r.bytesSent, img.config.length + img.layers.reduce((n, l) => n + l.size, 0));
  assert.equal(r.manifests.map((m) => [m.digest, m.as, m.action]), [[single.digest, 'v1', 'push']]);

  const back = await manifestAt(dst, 'team/app', 'v1');
  assert.is(back.digest, single.digest);
  assert.equal(back.bytes, img.manifest);
  assert.is(back.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  const a = await archive(src, 'team/app', single.digest, join(tmp.path, 'a1.tar'));
  const b = await archive(dst, 'team/app', single.digest, join(tmp.path, 'b1.tar'));
  assert.is(sha256(b), sha256(a), 'skopeo docker-archive from DEST equals the one from SRC');

  const again = await syncImages(options({ source: { kind: 'image', reference: `${src.host}/team/app:v1` }, destination: dst.host }));
  assert.ok(again.images[0]!.upToDate);
  assert.equal(again.totals.blobs, { sent: 0, mounted: 0, skipped: 3 });
  assert.is(again.totals.bytesSent, 0);
  assert.is(again.totals.manifestsPushed, 0);
});

test('multi-arch index, all platforms: index and children byte-identical; the shared layer goes once', async () => {
  if (!have()) return;
  const s = await syncImages(options({ source: { kind: 'image', reference: `${src.host}/team/multi:2.0` }, destination: `${dst.host}/all/multi`, platforms: 'all', chunkSize: 64 * 1024 }));
  const r = s.images[0]!;
  assert.is(r.digest, multi.digest);
  assert.is(r.destination, `${dst.host}/all/multi:2.0`);
  // 3 configs + 3 arch layers + 1 shared base.
  assert.equal(r.blobs, { sent: 7, mounted: 0, skipped: 0 });
  assert.equal(r.manifests.map((m) => m.as), [...multi.images.map((i) => i.digest), '2.0'], 'children first, then the index by tag');
  const top = await manifestAt(dst, 'all/multi', '2.0');
  assert.is(top.digest, multi.digest);
  for (const img of multi.images) assert.equal((await manifestAt(dst, 'all/multi', img.digest)).bytes, img.manifest);
  const a = await archive(src, 'team/multi', multi.digest, join(tmp.path, 'a2.tar'));
  const b = await archive(dst, 'all/multi', multi.digest, join(tmp.path, 'b2.tar'));
  assert.is(sha256(b), sha256(a));
});

test('one selected platform: the tag names that platform manifest; the index is not pushed', async () => {
  if (!have()) return;
  const notes: string[] = [];
  const s = await syncImages(options({
    source: { kind: 'image', reference: `${src.host}/team/multi:2.0` }, destination: `${dst.host}/arm/multi`,
    platforms: [parsePlatform('linux/arm64')], log: (l) => notes.push(l),
  }));
  const arm = multi.images[1]!;
  const r = s.images[0]!;
  assert.is(r.sourceDigest, multi.digest);
  assert.is(r.digest, arm.digest);
  assert.equal(r.platforms, ['linux/arm64']);
  assert.is(r.blobs.sent, 3);
  assert.match(notes.join('\n'), /multi-platform index; copying linux\/arm64 only/);
  assert.is((await manifestAt(dst, 'arm/multi', '2.0')).digest, arm.digest);
  await rejects(() => manifestAt(dst, 'arm/multi', multi.digest), /not found/);

  // Two platforms: a reduced index (new digest) over the two untouched platform manifests.
  const two = await syncImages(options({
    source: { kind: 'image', reference: `${src.host}/team/multi:2.0` }, destination: `${dst.host}/two/multi`,
    platforms: [parsePlatform('linux/arm/v7'), parsePlatform('linux/amd64')],
  }));
  const t = two.images[0]!;
  assert.equal(t.platforms, ['linux/amd64', 'linux/arm/v7']);
  const reduced = await manifestAt(dst, 'two/multi', '2.0');
  assert.is(reduced.digest, t.digest);
  assert.is.not(t.digest, multi.digest);
  const doc = JSON.parse(reduced.bytes.toString()) as { manifests: Array<{ digest: string }> };
  assert.equal(doc.manifests.map((m) => m.digest), [multi.images[0]!.digest, multi.images[2]!.digest]);

  await rejects(() => syncImages(options({ source: { kind: 'image', reference: `${src.host}/team/multi:2.0` }, destination: `${dst.host}/none`, platforms: [parsePlatform('linux/s390x')] })),
    /no image for platform linux\/s390x; available: linux\/amd64, linux\/arm64, linux\/arm\/v7/);
});

test('all tags of a repository; dry run writes nothing', async () => {
  if (!have()) return;
  const other = await makeImage(join(tmp.path, 'other'), { layers: [BASE, layer('app', 'app v2\n')] }, 'v2');
  await pushImage(other.dir, src.port, 'team/tags', 'v2');
  await pushImage(single.dir, src.port, 'team/tags', 'v1');
  const catalog = await getJson(`${dst.url}/v2/_catalog`);

  const dry = await syncImages(options({ source: { kind: 'repository', reference: `${src.host}/team/tags` }, destination: `${dst.host}/tags/app`, dryRun: true }));
  assert.ok(dry.dryRun);
  assert.equal(dry.images.map((i) => i.destination), [`${dst.host}/tags/app:v1`, `${dst.host}/tags/app:v2`]);
  assert.equal(dry.images[0]!.blobList.map((b) => b.action), ['send', 'send', 'send']);
  assert.equal(dry.images[0]!.manifests.map((m) => m.action), ['push']);
  assert.equal(await getJson(`${dst.url}/v2/_catalog`), catalog, 'dry run: catalog unchanged');
  assert.equal(await getJson(`${dst.url}/v2/tags/app/tags/list`), { status: 404 });

  const s = await syncImages(options({ source: { kind: 'repository', reference: `${src.host}/team/tags` }, destination: `${dst.host}/tags/app` }));
  assert.equal(s.images.map((i) => [i.destination, i.digest]), [[`${dst.host}/tags/app:v1`, single.digest], [`${dst.host}/tags/app:v2`, other.digest]]);
  // The base layer of v2 already arrived with v1.
  assert.is(s.images[1]!.blobs.skipped, 1);
  assert.equal(await getJson(`${dst.url}/v2/tags/app/tags/list`), { name: 'tags/app', tags: ['v1', 'v2'] });

  await rejects(() => syncImages(options({ source: { kind: 'repository', reference: `${src.host}/team/tags:v1` }, destination: dst.host })), /with all tags, name a repository without a tag/);
});

test('list file into a prefix: digests kept, a blob another synced repository holds is mounted', async () => {
  if (!have()) return;
  const text = [
    '# two repositories sharing a base layer',
    `${src.host}/team/app@${single.digest}`,
    `${src.host}/team/multi:2.0@${multi.images[0]!.digest}   # amd64 only, tagged`,
  ].join('\n');
  const entries = parseListFile(text, 'list.txt');
  const s: SyncSummary = await syncImages(options({ source: { kind: 'list', entries }, destination: `${dst.host}/pfx` }));
  assert.equal(s.images.map((i) => i.destination), [`${dst.host}/pfx/team/app@${single.digest}`, `${dst.host}/pfx/team/multi:2.0`]);
  const second = s.images[1]!;
  assert.is(second.digest, multi.images[0]!.digest);
  const base = multi.images[0]!.layers[0]!.digest;
  assert.equal(second.blobList.find((b) => b.digest === base), { digest: base, size: multi.images[0]!.layers[0]!.size, action: 'mount', from: 'pfx/team/app' });
  assert.is((await manifestAt(dst, 'pfx/team/app', single.digest)).digest, single.digest);
  assert.is((await manifestAt(dst, 'pfx/team/multi', '2.0')).digest, multi.images[0]!.digest);
});

test('same registry: blobs are mounted from the source repository, none are sent', async () => {
  if (!have()) return;
  const s = await syncImages(options({ source: { kind: 'image', reference: `${src.host}/team/app:v1` }, destination: `${src.host}/copy/app:latest` }));
  assert.equal(s.images[0]!.blobs, { sent: 0, mounted: 3, skipped: 0 });
  assert.is(s.totals.bytesSent, 0);
  assert.is((await manifestAt(src, 'copy/app', 'latest')).digest, single.digest);
});

/** A loopback HTTP proxy in front of a registry that records each request and its body size. */
interface Recorder {
  host: string;
  log: Array<{ method: string; path: string; bytes: number }>;
  /** Upload Locations made relative. */
  relativized: number;
  stop(): Promise<void>;
}

/** What a faulty proxy does to request number `n` (0-based) of a method: answer 503 unforwarded, or cut it mid-body. */
type Fault = (method: string, n: number) => 'reject' | 'cut' | undefined;

async function recorder(target: Registry, fault?: Fault, relative = false): Promise<Recorder> {
  const log: Recorder['log'] = [];
  const counts = new Map<string, number>();
  const self: Recorder = {
    host: '', log, relativized: 0,
    stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
  const server: Server = createServer((req, res) => {
    const rec = { method: req.method ?? '', path: req.url ?? '', bytes: 0 };
    log.push(rec);
    const n = counts.get(rec.method) ?? 0;
    counts.set(rec.method, n + 1);
    const what = fault?.(rec.method, n);
    if (what === 'reject') {
      req.resume();
      req.on('end', () => {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"UNAVAILABLE","message":"try again later"}]}');
      });
      return;
    }
    const half = Number(req.headers['content-length'] ?? 0) / 2;
    req.on('data', (c: Buffer) => {
      rec.bytes += c.length;
      if (what === 'cut' && rec.bytes >= half) {
        up.destroy();
        req.socket.destroy();
      }
    });
    const up = httpRequest({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      const headers = { ...ur.headers };
      // Registries may answer with relative upload Locations (the spec allows it).
      if (relative && headers.location && /^https?:/.test(headers.location)) {
        headers.location = headers.location.replace(/^https?:\/\/[^/]+/, '');
        self.relativized++;
      }
      res.writeHead(ur.statusCode ?? 502, headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const addr = server.address();
  self.host = `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return self;
}

test('relative upload Locations; chunked uploads go in bounded PATCHes; a re-run through the proxy sends no blob bytes', async () => {
  if (!have()) return;
  const rec = await recorder(dst, undefined, true);
  try {
    const s = await syncImages(options({ source: { kind: 'image', reference: `${src.host}/team/app:v1` }, destination: `${rec.host}/chunked/app`, chunkSize: 32 * 1024 }));
    assert.is(s.images[0]!.digest, single.digest);
    const patches = rec.log.filter((r) => r.method === 'PATCH');
    assert.ok(patches.length >= 5, `${patches.length} PATCHes`);
    assert.ok(patches.every((p) => p.bytes <= 32 * 1024));
    assert.is(patches.reduce((n, p) => n + p.bytes, 0), s.totals.bytesSent);
    assert.is((await manifestAt(dst, 'chunked/app', 'v1')).digest, single.digest);

    const mono = await syncImages(options({ source: { kind: 'image', reference: `${src.host}/team/app:v1` }, destination: `${rec.host}/whole/app` }));
    assert.equal(mono.totals.blobs, { sent: 3, mounted: 0, skipped: 0 });
    assert.ok(rec.relativized > 10, `${rec.relativized} relative Locations`);
    assert.is((await manifestAt(dst, 'whole/app', 'v1')).digest, single.digest);

    rec.log.length = 0;
    const again = await syncImages(options({ source: { kind: 'image', reference: `${src.host}/team/app:v1` }, destination: `${rec.host}/chunked/app` }));
    assert.ok(again.images[0]!.upToDate);
    assert.equal(rec.log.filter((r) => r.method !== 'GET' && r.method !== 'HEAD'), [], 'only reads on a re-run');
    assert.is(rec.log.reduce((n, r) => n + r.bytes, 0), 0);
  } finally {
    await rec.stop();
  }
});

test('chunked upload faults: a 503 chunk resumes from the Range the registry reports; a cut one resumes or restarts', async () => {
  if (!have()) return;
  const rec = await recorder(dst, (method, n) => (method === 'PATCH' && n === 1 ? 'reject' : method === 'PATCH' && n === 3 ? 'cut' : undefined));
  try {
    const s = await syncImages(options({ source: { kind: 'image', reference: `${src.host}/team/app:v1` }, destination: `${rec.host}/faulty/app`, chunkSize: 32 * 1024, jobs: 1 }));
    assert.is(s.images[0]!.digest, single.digest);
    assert.is((await manifestAt(dst, 'faulty/app', 'v1')).digest, single.digest);
    const methods = rec.log.map((r) => r.method);
    const rejected = methods.indexOf('PATCH', methods.indexOf('PATCH') + 1);
    assert.is(methods[rejected + 1], 'GET', 'after the 503: ask the session what arrived');
    assert.is(methods[rejected + 2], 'PATCH', 'then send the chunk again');
    // Each blob: HEAD, POST, PATCH…, PUT, HEAD. After the cut the registry either reports a
    // consistent Range (resume) or refuses the session (the blob starts again from a POST).
    const posts = methods.filter((m) => m === 'POST').length;
    assert.ok(posts === 3 || posts === 4, methods.join(' '));
    const cut = methods.indexOf('PATCH', rejected + 3);
    assert.ok(methods[cut + 1] === 'GET' || methods.slice(cut + 1).includes('POST'), methods.join(' '));
  } finally {
    await rec.stop();
  }
});

/**
 * A destination that hands uploads to another origin (as registries backed by object storage
 * do): the registry wants Basic auth, the upload host records whether it ever saw credentials.
 */
async function splitDestination(): Promise<{ host: string; uploadAuth: string[]; uploadBytes: number; stop(): Promise<void> }> {
  const AUTH = `Basic ${Buffer.from(`alice:${'s3cret'}`).toString('base64')}`;
  const blobs = new Map<string, number>();
  const manifests = new Map<string, { bytes: Buffer; type: string }>();
  const sessions = new Map<string, number>();
  let made = 0;
  const state = { host: '', uploadAuth: [] as string[], uploadBytes: 0, stop: async () => undefined };
  const body = (req: IncomingMessage): Promise<Buffer> => new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
  });
  const uploads = createServer((req, res) => {
    void body(req).then((b) => {
      state.uploadAuth.push(req.headers.authorization ?? '');
      state.uploadBytes += b.length;
      const u = new URL(req.url ?? '/', 'http://x');
      const id = u.pathname;
      const held = (sessions.get(id) ?? 0) + b.length;
      sessions.set(id, held);
      if (req.method === 'PATCH') {
        res.writeHead(202, { location: `${u.pathname}?sig=abc`, range: `0-${held - 1}` }).end();
        return;
      }
      const digest = u.searchParams.get('digest') ?? '';
      blobs.set(`${decodeURIComponent(id.split('/')[2] ?? '')}@${digest}`, held);
      res.writeHead(201, { 'docker-content-digest': digest }).end();
    });
  });
  const registry = createServer((req, res) => {
    void body(req).then((b) => {
      if (req.headers.authorization !== AUTH) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="split"' }).end();
        return;
      }
      const u = new URL(req.url ?? '/', 'http://x');
      const m = /^\/v2\/(.+)\/(blobs|manifests)\/(.*)$/.exec(u.pathname);
      if (u.pathname === '/v2/') return void res.writeHead(200).end();
      if (m && m[2] === 'blobs' && m[3] === 'uploads/' && req.method === 'POST') {
        return void res.writeHead(202, { location: `http://${uploadHost}/up/${encodeURIComponent(m[1]!)}/${++made}?sig=abc` }).end();
      }
      if (m && m[2] === 'blobs') {
        const size = blobs.get(`${m[1]}@${m[3]}`);
        return void res.writeHead(size === undefined ? 404 : 200, size === undefined ? {} : { 'content-length': String(size), 'docker-content-digest': m[3]! }).end();
      }
      if (m && m[2] === 'manifests' && req.method === 'PUT') {
        const digest = `sha256:${sha256(b)}`;
        manifests.set(`${m[1]}:${m[3]}`, { bytes: b, type: req.headers['content-type'] ?? '' });
        manifests.set(`${m[1]}:${digest}`, { bytes: b, type: req.headers['content-type'] ?? '' });
        return void res.writeHead(201, { 'docker-content-digest': digest }).end();
      }
      if (m && m[2] === 'manifests') {
        const found = manifests.get(`${m[1]}:${m[3]}`);
        if (!found) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-type': found.type, 'docker-content-digest': `sha256:${sha256(found.bytes)}`, 'content-length': String(found.bytes.length) });
        return void res.end(req.method === 'HEAD' ? undefined : found.bytes);
      }
      res.writeHead(404).end();
    });
  });
  const listen = (srv: Server): Promise<string> => new Promise((resolve) => srv.listen(0, '127.0.0.1', () => {
    const a = srv.address();
    resolve(`127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`);
  }));
  const uploadHost = await listen(uploads);
  state.host = await listen(registry);
  state.stop = async () => {
    for (const srv of [uploads, registry]) {
      srv.closeAllConnections();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
  };
  return state;
}

test('uploads handed to another origin get no credentials (streamed PUT and chunked PATCHes)', async () => {
  if (!have()) return;
  const split = await splitDestination();
  try {
    const creds = { username: 'alice', password: 's3cret', source: 'test' };
    const base = { source: { kind: 'image' as const, reference: `${src.host}/team/app:v1` }, src: { tlsVerify: false, credentials: null }, fetch: { retries: 0 } };
    const whole = await syncImages({ ...base, destination: `${split.host}/whole`, dest: { tlsVerify: false, credentials: creds } });
    assert.is(whole.images[0]!.digest, single.digest);
    const chunked = await syncImages({ ...base, destination: `${split.host}/chunked`, dest: { tlsVerify: false, credentials: creds }, chunkSize: 64 * 1024 });
    assert.is(chunked.images[0]!.digest, single.digest);
    assert.ok(split.uploadAuth.length >= 6, `${split.uploadAuth.length} upload requests`);
    assert.equal([...new Set(split.uploadAuth)], [''], 'no Authorization header ever reached the upload host');
    assert.is(split.uploadBytes, whole.totals.bytesSent + chunked.totals.bytesSent);
  } finally {
    await split.stop();
  }
});

test.run();
