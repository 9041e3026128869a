/** lib/fetch against loopback servers that misbehave on purpose. */
import { readFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Hash } from '../lib/hash/index.js';
import { closeDispatchers, downloadToFile, openDownload, request, type FetchOptions } from '../lib/fetch/index.js';
import { rejects } from './helpers/assert.js';
import { fileHandler, startServer, testBytes, type TestServer } from './helpers/http-servers.js';
import { freePort } from './helpers/net.js';
import { tempDir } from './helpers/tmp.js';

/** Fast retries, no environment leaking in. */
const FAST: FetchOptions = { env: {}, retryBaseMs: 5, stallTimeoutMs: 5000 };

async function withServer(server: Promise<TestServer>, fn: (s: TestServer, dir: string) => Promise<void>): Promise<void> {
  const s = await server;
  const dir = tempDir();
  try {
    await fn(s, dir.path);
  } finally {
    await s.close();
    dir.remove();
  }
}

const DATA = testBytes(300_000);
const SHA = Hash.of('sha256', DATA);

function resumePoint(range: string | undefined): number {
  const m = /^bytes=(\d+)-$/.exec(range ?? '');
  assert.ok(m, `expected a Range request, got ${range}`);
  return Number(m![1]);
}

test('downloads to a file, hashing as it streams', () =>
  withServer(startServer(fileHandler({ data: DATA })), async (s, dir) => {
    const seen: number[] = [];
    const dest = join(dir, 'out');
    const r = await downloadToFile(s.url('/f'), dest, 'sha256', { ...FAST, onProgress: (n, total) => { seen.push(n); assert.is(total, DATA.length); } });
    assert.is(r.size, DATA.length);
    assert.ok(r.hash.equals(SHA));
    assert.is(r.status, 200);
    assert.is(r.finalUrl, s.url('/f'));
    assert.ok(readFileSync(dest).equals(DATA));
    assert.is(seen[seen.length - 1], DATA.length);
    assert.is(s.requests.length, 1);
  }));

test('a body broken mid-way is resumed with Range and If-Range', () =>
  withServer(startServer(fileHandler({ data: DATA, etag: '"v1"', plan: [{ kind: 'drop', after: 100_000 }] })), async (s, dir) => {
    const dest = join(dir, 'out');
    const progress: number[] = [];
    const r = await downloadToFile(s.url('/f'), dest, 'sha256', { ...FAST, onProgress: (n) => progress.push(n) });
    assert.ok(r.hash.equals(SHA));
    assert.ok(readFileSync(dest).equals(DATA));
    assert.is(s.requests.length, 2);
    assert.is(s.requests[0]!.headers.range, undefined);
    // The resume point is what had been delivered when the break was noticed (undici may drop
    // bytes still buffered at that moment; they are fetched again).
    const from = resumePoint(s.requests[1]!.headers.range);
    assert.ok(from > 0 && from <= 100_000 && progress.includes(from), `resumed at ${from}`);
    assert.is(s.requests[1]!.headers['if-range'], '"v1"');
  }));

test('a server that ignores Range makes downloadToFile restart from byte 0', () =>
  withServer(startServer(fileHandler({ data: DATA, ranges: false, plan: [{ kind: 'drop', after: 120_000 }] })), async (s, dir) => {
    const dest = join(dir, 'out');
    const progress: number[] = [];
    const r = await downloadToFile(s.url('/f'), dest, 'sha256', { ...FAST, onProgress: (n) => progress.push(n) });
    const from = resumePoint(s.requests[1]!.headers.range);
    assert.ok(from > 0 && from <= 120_000);
    assert.ok(progress.indexOf(0) > 0, 'progress went back to the start');
    assert.is(r.size, DATA.length);
    assert.ok(r.hash.equals(SHA), 'hash restarted with the body');
    assert.ok(readFileSync(dest).equals(DATA), 'file truncated and rewritten');
  }));

test('openDownload yields each byte once, in order, across a resume and a Range-ignoring restart', () =>
  withServer(startServer(fileHandler({ data: DATA, plan: [{ kind: 'drop', after: 50_000 }, { kind: 'drop', after: 200_000, ignoreRange: true }] })), async (s) => {
    // 1st: 0..50k then cut; 2nd: asks 50000-, gets 200, skips 50k, cut at 200k; 3rd: 206 from 200000.
    const dl = await openDownload(s.url('/blob'), { ...FAST, algo: 'sha256' });
    const parts: Buffer[] = [];
    for await (const chunk of dl) parts.push(chunk);
    const got = Buffer.concat(parts);
    assert.is(got.length, DATA.length);
    assert.ok(got.equals(DATA));
    assert.ok(dl.digest().equals(SHA));
    assert.is(dl.restarts, 1);
    assert.is(dl.resumes, 1);
    assert.is(s.requests.length, 3);
    assert.is(s.requests[0]!.headers.range, undefined);
    assert.ok(resumePoint(s.requests[1]!.headers.range) <= 50_000);
    assert.ok(resumePoint(s.requests[2]!.headers.range) <= 200_000);
  }));

test('openDownload without onRestart refuses to splice a resource that changed', async () => {
  let version = 0;
  const a = testBytes(100_000, 1);
  const b = testBytes(100_000, 2);
  await withServer(startServer((req, res, i) => {
    const data = version === 0 ? a : b;
    fileHandler({ data, etag: version === 0 ? '"a"' : '"b"', plan: i === 0 ? [{ kind: 'drop', after: 30_000 }] : [] })(req, res, 0);
    version = 1;
  }), async (s) => {
    const dl = await openDownload(s.url('/x'), FAST);
    await rejects(async () => { for await (const _ of dl) { /* drain */ } }, /^download of http:\/\/127\.0\.0\.1:\d+\/x failed: the resource changed while resuming at byte 30000/);
    assert.is(s.requests[1]!.headers['if-range'], '"a"');
  });
});

test('503 then 200 is retried; 429 honours Retry-After', () =>
  withServer(startServer(fileHandler({ data: DATA, plan: [{ kind: 'status', status: 503 }, { kind: 'status', status: 429, headers: { 'retry-after': '1' } }] })), async (s, dir) => {
    const t0 = Date.now();
    const r = await downloadToFile(s.url('/f'), join(dir, 'out'), 'sha256', FAST);
    const waited = Date.now() - t0;
    assert.ok(r.hash.equals(SHA));
    assert.is(s.requests.length, 3);
    assert.ok(waited >= 950, `waited ${waited} ms for Retry-After: 1`);
  }));

test('retries are capped and the error says so in one line', () =>
  withServer(startServer(fileHandler({ data: DATA, plan: Array(10).fill({ kind: 'status', status: 503 }) })), async (s, dir) => {
    const err = await rejects(() => downloadToFile(s.url('/f'), join(dir, 'out'), 'sha256', { ...FAST, retries: 2 }), /./);
    assert.is(err.message, `download of ${s.url('/f')} failed: HTTP 503 Service Unavailable (after 2 retries)`);
    assert.is(s.requests.length, 3);
    // curl's --retry N via NIX_CURL_FLAGS does the same.
    s.requests.length = 0;
    await rejects(() => downloadToFile(s.url('/f'), join(dir, 'out'), 'sha256', { ...FAST, env: { NIX_CURL_FLAGS: '--retry 1' } }), /after 1 retry\)$/);
    assert.is(s.requests.length, 2);
  }));

test('404 is not retried and the message names URL and status', () =>
  withServer(startServer((_req, res) => { res.writeHead(404); res.end('nope'); }), async (s, dir) => {
    const err = await rejects(() => downloadToFile(s.url('/missing'), join(dir, 'out'), 'sha256', FAST), /./);
    assert.is(err.message, `download of ${s.url('/missing')} failed: HTTP 404 Not Found`);
    assert.is(s.requests.length, 1);
  }));

test('credentials in the URL are sent as Basic auth but never appear in errors', () =>
  withServer(startServer((_req, res) => { res.writeHead(403); res.end(); }), async (s, dir) => {
    const url = `http://alice:s3cret@127.0.0.1:${s.port}/private`;
    const err = await rejects(() => downloadToFile(url, join(dir, 'out'), 'sha256', FAST), /HTTP 403 Forbidden$/);
    assert.is(err.message, `download of http://***@127.0.0.1:${s.port}/private failed: HTTP 403 Forbidden`);
    assert.not.match(err.message + String((err as Error & { cause?: unknown }).cause), /s3cret|alice/);
    assert.is(s.requests[0]!.headers.authorization, `Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
  }));

test('redirects: Authorization and Cookie never reach another origin', async () => {
  const other = await startServer(fileHandler({ data: DATA }), { host: '127.0.0.2' });
  const sameOriginTarget = '/moved';
  const origin = await startServer((req, res) => {
    if (req.url === '/start') {
      res.writeHead(302, { location: sameOriginTarget });
      res.end();
    } else if (req.url === sameOriginTarget) {
      res.writeHead(307, { location: other.url('/elsewhere') });
      res.end();
    } else {
      res.writeHead(500);
      res.end();
    }
  });
  const dir = tempDir();
  try {
    const r = await downloadToFile(origin.url('/start'), join(dir.path, 'out'), 'sha256', {
      ...FAST,
      headers: { Authorization: 'Bearer origin-token-123', cookie: 'session=abc', 'X-Trace': 'kept' },
      curlOpts: '-u bob:pw -H "X-Curl: yes"',
    });
    assert.ok(r.hash.equals(SHA));
    assert.is(r.finalUrl, other.url('/elsewhere'));
    assert.equal(origin.requests.map((q) => q.url), ['/start', '/moved']);
    for (const q of origin.requests) {
      assert.is(q.headers.authorization, 'Bearer origin-token-123', 'explicit header wins over -u on the original origin');
      assert.is(q.headers.cookie, 'session=abc');
    }
    assert.is(other.requests.length, 1);
    const h = other.requests[0]!.headers;
    assert.is(h.authorization, undefined);
    assert.is(h.cookie, undefined);
    assert.is(h['x-trace'], 'kept');
    assert.is(h['x-curl'], 'yes');
  } finally {
    await origin.close();
    await other.close();
    dir.remove();
  }
});

test('an error after a redirect names who answered, without secrets', async () => {
  const other = await startServer((_q, res) => { res.writeHead(403); res.end(); }, { host: '127.0.0.2' });
  const signed = other.url('/blob?X-Amz-Signature=deadbeef&part=1');
  const origin = await startServer((_q, res) => { res.writeHead(302, { location: signed }); res.end(); });
  const dir = tempDir();
  try {
    const err = await rejects(() => downloadToFile(origin.url('/v2/blob'), join(dir.path, 'out'), 'sha256', FAST), /./);
    assert.is(err.message, `download of ${origin.url('/v2/blob')} failed: HTTP 403 Forbidden from ${other.url('/blob?X-Amz-Signature=***&part=1')}`);
  } finally {
    await origin.close();
    await other.close();
    dir.remove();
  }
});

test('a chunked body cut right after its last byte completes on a 416 "bytes */N"', () => {
  const small = testBytes(1000, 4);
  const serve = fileHandler({ data: small });
  return withServer(startServer((req, res, i) => {
    if (i > 0) return serve(req, res, i);
    // No Content-Length; the terminating chunk never comes.
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(small, () => setTimeout(() => res.socket?.destroy(), 50));
  }), async (s, dir) => {
    const r = await downloadToFile(s.url('/c'), join(dir, 'out'), 'sha256', FAST);
    assert.ok(r.hash.equals(Hash.of('sha256', small)));
    assert.is(s.requests.length, 2);
    assert.is(s.requests[1]!.headers.range, 'bytes=1000-');
  });
});

test('redirect loops stop at maxRedirects', () =>
  withServer(startServer((req, res) => { res.writeHead(301, { location: `/r${Number(req.url!.slice(2) || 0) + 1}` }); res.end(); }), async (s, dir) => {
    const err = await rejects(() => downloadToFile(s.url('/r0'), join(dir, 'out'), 'sha256', { ...FAST, maxRedirects: 3 }), /./);
    assert.is(err.message, `download of ${s.url('/r0')} failed: too many redirects (more than 3)`);
    assert.is(s.requests.length, 4);
  }));

test('a stalled body times out, and is resumed when retries allow', () =>
  withServer(startServer(fileHandler({ data: DATA, plan: [{ kind: 'stall', after: 64_000 }, { kind: 'stall', after: 1000 }] })), async (s, dir) => {
    const t0 = Date.now();
    const err = await rejects(() => downloadToFile(s.url('/f'), join(dir, 'out'), 'sha256', { ...FAST, stallTimeoutMs: 300, retries: 0 }), /./);
    assert.match(err.message, /^download of http:\/\/127\.0\.0\.1:\d+\/f failed: stalled: no data received within the stall timeout$/);
    assert.ok(Date.now() - t0 < 3000);
    // Request 2 stalls after 1000 bytes; request 3 resumes from there.
    const r = await downloadToFile(s.url('/f'), join(dir, 'out'), 'sha256', { ...FAST, stallTimeoutMs: 300, retries: 2 });
    assert.ok(r.hash.equals(SHA));
    assert.is(s.requests[2]!.headers.range, 'bytes=1000-');
  }));

test('the total time limit covers the whole operation', () =>
  withServer(startServer(fileHandler({ data: DATA, plan: [{ kind: 'stall', after: 10 }, { kind: 'stall', after: 10 }] })), async (s, dir) => {
    const err = await rejects(() => downloadToFile(s.url('/f'), join(dir, 'out'), 'sha256', { ...FAST, totalTimeoutMs: 400 }), /./);
    assert.is(err.message, `download of ${s.url('/f')} failed: timed out after 0.4 s (total time limit)`);
    // --max-time from NIX_CURL_FLAGS does the same.
    await rejects(() => downloadToFile(s.url('/f'), join(dir, 'out'), 'sha256', { ...FAST, env: { NIX_CURL_FLAGS: '--max-time 0.3' } }), /timed out after 0\.3 s/);
  }));

test('the caller can abort', () =>
  withServer(startServer(fileHandler({ data: DATA, plan: [{ kind: 'stall', after: 10 }] })), async (s, dir) => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await rejects(() => downloadToFile(s.url('/f'), join(dir, 'out'), 'sha256', { ...FAST, signal: ac.signal }), /failed: aborted$/);
  }));

test('connection refused is retried, then reported', async () => {
  const port = await freePort();
  const dir = tempDir();
  try {
    const t0 = Date.now();
    const err = await rejects(() => downloadToFile(`http://127.0.0.1:${port}/x`, join(dir.path, 'out'), 'sha256', { ...FAST, retries: 2 }), /./);
    assert.match(err.message, new RegExp(`^download of http://127\\.0\\.0\\.1:${port}/x failed: .*ECONNREFUSED.*\\(after 2 retries\\)$`));
    assert.ok(Date.now() - t0 < 2000);
  } finally {
    dir.remove();
  }
});

test('a 206 whose lengths disagree with its Content-Range is an error, not silent corruption', () =>
  withServer(startServer(fileHandler({ data: DATA, plan: [{ kind: 'drop', after: 1000 }, { kind: 'bad-range', contentRange: `bytes {start}-${DATA.length - 1}/${DATA.length}`, contentLength: 10 }] })), async (s, dir) => {
    const err = await rejects(() => downloadToFile(s.url('/f'), join(dir, 'out'), 'sha256', FAST), /./);
    const from = resumePoint(s.requests[1]!.headers.range);
    assert.is(err.message, `download of ${s.url('/f')} failed: Content-Length 10 disagrees with Content-Range 'bytes ${from}-${DATA.length - 1}/${DATA.length}' (after 1 retry)`);
  }));

test('a 206 that starts at the wrong offset is refused', () =>
  withServer(startServer(fileHandler({ data: DATA, plan: [{ kind: 'drop', after: 1000 }, { kind: 'bad-range', contentRange: `bytes 0-${DATA.length - 1}/${DATA.length}` }] })), async (s, dir) => {
    await rejects(() => downloadToFile(s.url('/f'), join(dir, 'out'), 'sha256', FAST), /failed: asked for bytes [1-9]\d*- but the server sent Content-Range 'bytes 0-299999\/300000' \(after 1 retry\)$/);
  }));

test('a body shorter than Content-Length counts as broken: retried, then reported', () =>
  withServer(startServer(fileHandler({ data: DATA, ranges: false, plan: Array(5).fill({ kind: 'drop', after: 5000 }) })), async (s, dir) => {
    const err = await rejects(() => downloadToFile(s.url('/f'), join(dir, 'out'), 'sha256', { ...FAST, retries: 2 }), /\(after 2 retries\)$/);
    assert.not.match(err.message, /\n/);
    assert.is(s.requests.length, 3);
  }));

test('request(): API answers come back as they are; GETs retry 5xx, POSTs do not', () =>
  withServer(startServer((req, res, i) => {
    if (req.url === '/auth') {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="x"', 'content-type': 'application/json' });
      res.end('{"errors":[]}');
    } else if (req.url === '/flaky' && i < 2) {
      res.writeHead(502);
      res.end();
    } else if (req.url === '/post') {
      res.writeHead(503);
      res.end();
    } else {
      let body = '';
      req.on('data', (d: Buffer) => { body += d.toString(); });
      req.on('end', () => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end(`${req.method} ${body}`); });
    }
  }), async (s) => {
    const text = async (r: { body: NodeJS.ReadableStream }): Promise<string> => {
      let out = '';
      for await (const c of r.body) out += c.toString();
      return out;
    };
    const a = await request(s.url('/auth'), {}, FAST);
    assert.is(a.status, 401);
    assert.is(a.headers['www-authenticate'], 'Bearer realm="x"');
    assert.is(await text(a), '{"errors":[]}');
    const f = await request(s.url('/flaky'), {}, FAST);
    assert.is(f.status, 200);
    assert.is(await text(f), 'GET ');
    const before = s.requests.length;
    const p = await request(s.url('/post'), { method: 'POST', body: 'x=1' }, FAST);
    assert.is(p.status, 503);
    p.body.resume();
    assert.is(s.requests.length - before, 1);
    const echo = await request(s.url('/echo'), { method: 'PUT', body: 'payload', headers: { 'content-type': 'text/plain' } }, FAST);
    assert.is(await text(echo), 'PUT payload');
  }));

test('connect timeout: NIX_CONNECT_TIMEOUT / connectTimeoutMs bound the TCP+TLS handshake', async () => {
  // Accepts TCP connections but never answers the TLS handshake.
  const sockets: Socket[] = [];
  const silent = createNetServer((sock) => { sockets.push(sock); });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = (silent.address() as AddressInfo).port;
  const dir = tempDir();
  try {
    const t0 = Date.now();
    const err = await rejects(() => downloadToFile(`https://127.0.0.1:${port}/x`, join(dir.path, 'out'), 'sha256', { ...FAST, retries: 1, connectTimeoutMs: 200 }), /./);
    assert.is(err.message, `download of https://127.0.0.1:${port}/x failed: connect timeout (after 1 retry)`);
    assert.ok(Date.now() - t0 < 2000);
    await closeDispatchers();
    await rejects(() => downloadToFile(`https://127.0.0.1:${port}/y`, join(dir.path, 'out'), 'sha256', { ...FAST, retries: 0, env: { NIX_CONNECT_TIMEOUT: '0.2' } }), /failed: connect timeout$/);
  } finally {
    for (const sock of sockets) sock.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
    dir.remove();
  }
});

test('request(): a body that stalls while the caller reads it fails with a one-line FetchError', () =>
  withServer(startServer(fileHandler({ data: DATA, plan: [{ kind: 'stall', after: 1000 }] })), async (s) => {
    const r = await request(s.url('/slow'), {}, { ...FAST, stallTimeoutMs: 200 });
    assert.is(r.status, 200);
    let got = 0;
    const err = await rejects(async () => { for await (const c of r.body) got += (c as Buffer).length; }, /./);
    assert.is(got, 1000);
    assert.is(err.name, 'FetchError');
    assert.is(err.message, `GET ${s.url('/slow')} failed: stalled: no data received within the stall timeout`);
  }));

test.after(async () => {
  await closeDispatchers();
});

test.run();
