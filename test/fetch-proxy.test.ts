/** lib/fetch through real proxies: tinyproxy (forwarding, CONNECT to TLS) and dante (SOCKS). */
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Hash } from '../lib/hash/index.js';
import { closeDispatchers, downloadToFile, request, type FetchOptions } from '../lib/fetch/index.js';
import { rejects } from './helpers/assert.js';
import { fileHandler, makeTlsFiles, startServer, testBytes, type TestServer, type TlsFiles } from './helpers/http-servers.js';
import { freePort } from './helpers/net.js';
import { havePeer } from './helpers/peers.js';
import { startDante, startTinyproxy, type RunningProxy } from './helpers/proxies.js';
import { tempDir } from './helpers/tmp.js';

const FAST: FetchOptions = { retryBaseMs: 5, stallTimeoutMs: 10_000 };
const DATA = testBytes(200_000, 3);
const SHA = Hash.of('sha256', DATA);

interface Rig {
  dir: string;
  origin: TestServer;
  proxy: RunningProxy;
  tls?: TlsFiles & { caFile: string };
}

/** A temp dir, a proxy and an origin (HTTPS with a throwaway CA when `tls`), all stopped afterwards. */
async function withRig(kind: 'tinyproxy' | 'dante', opts: { tls?: boolean; auth?: { user: string; password: string } }, fn: (rig: Rig) => Promise<void>): Promise<void> {
  if (!havePeer(kind === 'tinyproxy' ? 'tinyproxy' : 'danted')) return;
  if (opts.tls && !havePeer('openssl')) return;
  const dir = tempDir();
  let origin: TestServer | undefined;
  let proxy: RunningProxy | undefined;
  try {
    const tls = opts.tls ? await makeTlsFiles(dir.path) : undefined;
    origin = await startServer(fileHandler({ data: DATA }), tls ? { tls } : {});
    proxy = kind === 'tinyproxy' ? await startTinyproxy(dir.path, opts.auth ? { auth: opts.auth } : {}) : await startDante(dir.path);
    await fn({ dir: dir.path, origin, proxy, ...(tls ? { tls } : {}) });
  } finally {
    await proxy?.stop();
    await origin?.close();
    await closeDispatchers();
    dir.remove();
  }
}

/** tinyproxy's log lines for requests (LogLevel Info writes one per request). */
function requestLines(proxy: RunningProxy): string[] {
  return proxy.log().split('\n').filter((l) => /Request \(file descriptor \d+\): /.test(l));
}

test('http_proxy: plain http is forwarded by tinyproxy (no CONNECT)', () =>
  withRig('tinyproxy', {}, async ({ dir, origin, proxy }) => {
    const r = await downloadToFile(origin.url('/via-proxy.bin'), join(dir, 'out'), 'sha256', { ...FAST, env: { http_proxy: proxy.address } });
    assert.ok(r.hash.equals(SHA));
    assert.match(String(origin.requests[0]!.headers.via), /tinyproxy/);
    const lines = requestLines(proxy);
    assert.ok(lines.some((l) => l.endsWith(`GET ${origin.url('/via-proxy.bin')} HTTP/1.1`)), lines.join('\n'));
  }));

test('https_proxy: https goes through a CONNECT tunnel; the CA comes from NIX_SSL_CERT_FILE', () =>
  withRig('tinyproxy', { tls: true }, async ({ dir, origin, proxy, tls }) => {
    const env = { https_proxy: proxy.address, NIX_SSL_CERT_FILE: tls!.caFile };
    const r = await downloadToFile(origin.url('/secure.bin'), join(dir, 'out'), 'sha256', { ...FAST, env });
    assert.ok(r.hash.equals(SHA));
    assert.is(origin.requests[0]!.headers.via, undefined, 'a tunnel does not touch the request');
    assert.ok(requestLines(proxy).some((l) => l.endsWith(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1`)), proxy.log());

    // Without the CA the certificate is refused, once (not retried), in one line.
    const before = origin.requests.length;
    const err = await rejects(() => downloadToFile(origin.url('/secure.bin'), join(dir, 'out'), 'sha256', { ...FAST, env: { https_proxy: proxy.address } }), /certificate/);
    assert.match(err.message, new RegExp(`^download of ${origin.url('/secure.bin').replace(/[.]/g, '\\.')} failed: [^\\n]*certificate`));
    assert.is(origin.requests.length, before);
    assert.not.match(err.message, /after \d+ retr/);
    // SSL_CERT_FILE, --cacert and -k work too.
    await downloadToFile(origin.url('/a'), join(dir, 'out'), 'sha256', { ...FAST, env: { https_proxy: proxy.address, SSL_CERT_FILE: tls!.caFile } });
    await downloadToFile(origin.url('/b'), join(dir, 'out'), 'sha256', { ...FAST, env: { https_proxy: proxy.address }, curlOpts: `--cacert ${tls!.caFile}` });
    await downloadToFile(origin.url('/c'), join(dir, 'out'), 'sha256', { ...FAST, env: { https_proxy: proxy.address, NIX_CURL_FLAGS: '-k' } });
    assert.is(origin.requests.length, before + 3);
  }));

test('no_proxy bypasses the proxy (proved by its log); other hosts still use it', () =>
  withRig('tinyproxy', {}, async ({ dir, origin, proxy }) => {
    await downloadToFile(origin.url('/direct.bin'), join(dir, 'out'), 'sha256', { ...FAST, env: { http_proxy: proxy.address, no_proxy: 'localhost,127.0.0.1' } });
    await downloadToFile(origin.url('/by-port.bin'), join(dir, 'out'), 'sha256', { ...FAST, env: { http_proxy: proxy.address, NO_PROXY: `127.0.0.1:${origin.port}` } });
    await downloadToFile(origin.url('/proxied.bin'), join(dir, 'out'), 'sha256', { ...FAST, env: { http_proxy: proxy.address, no_proxy: '.example.com,127.0.0.2' } });
    const lines = requestLines(proxy).join('\n');
    assert.not.match(lines, /direct\.bin|by-port\.bin/);
    assert.match(lines, /proxied\.bin/);
    assert.equal(origin.requests.map((q) => q.headers.via === undefined), [true, true, false]);
  }));

test('curl flags: -x overrides the environment, --noproxy overrides no_proxy', () =>
  withRig('tinyproxy', {}, async ({ dir, origin, proxy }) => {
    await downloadToFile(origin.url('/flag-proxied'), join(dir, 'out'), 'sha256', { ...FAST, env: { no_proxy: '127.0.0.1' }, curlOpts: `-x ${proxy.address} --noproxy ''` });
    await downloadToFile(origin.url('/flag-direct'), join(dir, 'out'), 'sha256', { ...FAST, env: { NIX_CURL_FLAGS: `-x ${proxy.address}` }, curlOpts: '--noproxy 127.0.0.1' });
    const lines = requestLines(proxy).join('\n');
    assert.match(lines, /flag-proxied/);
    assert.not.match(lines, /flag-direct/);
  }));

test('proxy credentials from the proxy URL reach the proxy, never appear in errors', () =>
  withRig('tinyproxy', { auth: { user: 'pu', password: 'proxy-secret' } }, async ({ dir, origin, proxy }) => {
    const authed = proxy.address.replace('http://', 'http://pu:proxy-secret@');
    const r = await downloadToFile(origin.url('/auth.bin'), join(dir, 'out'), 'sha256', { ...FAST, env: { http_proxy: authed } });
    assert.ok(r.hash.equals(SHA));
    assert.is(origin.requests[0]!.headers['proxy-authorization'], undefined);
    const before = origin.requests.length;
    const res = await request(origin.url('/api'), {}, { ...FAST, env: { http_proxy: proxy.address.replace('http://', 'http://pu:wrong@') } });
    assert.ok(res.status === 401 || res.status === 407, `tinyproxy refused with ${res.status}`);
    res.body.resume();
    assert.is(origin.requests.length, before);
    // A failing proxy does not leak its credentials into the message.
    await proxy.stop();
    const err = await rejects(() => downloadToFile(origin.url('/x'), join(dir, 'out'), 'sha256', { ...FAST, retries: 0, env: { http_proxy: authed } }), /ECONNREFUSED/);
    assert.not.match(err.message, /proxy-secret/);
  }));

test('SOCKS5 (dante): http and https through the tunnel', () =>
  withRig('dante', { tls: true }, async ({ dir, origin, proxy, tls }) => {
    const env = { all_proxy: `socks5://${proxy.address}`, NIX_SSL_CERT_FILE: tls!.caFile };
    const r = await downloadToFile(origin.url('/socks.bin'), join(dir, 'out'), 'sha256', { ...FAST, env });
    assert.ok(r.hash.equals(SHA));
    assert.match(proxy.log(), new RegExp(`tcp/connect \\[: 127\\.0\\.0\\.1\\.\\d+ 127\\.0\\.0\\.1\\.${proxy.port} -> 127\\.0\\.0\\.1\\.\\d+ 127\\.0\\.0\\.1\\.${origin.port}`));
  }));

// dante has no SOCKS4a (it takes the 0.0.0.x marker address literally), so socks4a:// is not
// exercised against it.
test('SOCKS4 and socks5h (remote name resolution) via dante', async () => {
  if (!havePeer('danted')) return;
  const dir = tempDir();
  const origin = await startServer(fileHandler({ data: DATA }));
  let proxy: RunningProxy | undefined;
  try {
    proxy = await startDante(dir.path);
    for (const scheme of ['socks4', 'socks', 'socks5h']) {
      await closeDispatchers(); // a fresh connection each time, so each one shows in dante's log
      const before = (proxy.log().match(/tcp\/connect \[/g) ?? []).length;
      // socks5h sends the name for dante to resolve.
      const host = scheme === 'socks5h' ? 'localhost' : '127.0.0.1';
      const url = `http://${host}:${origin.port}/${scheme}.bin`;
      const r = await downloadToFile(url, join(dir.path, 'out'), 'sha256', { ...FAST, env: { http_proxy: `${scheme}://${proxy.address}` } });
      assert.ok(r.hash.equals(SHA), scheme);
      const after = (proxy.log().match(/tcp\/connect \[/g) ?? []).length;
      assert.ok(after > before, `${scheme} went through dante`);
    }
    assert.is(origin.requests.length, 3);
    // A SOCKS refusal (nothing listens behind the proxy) is reported with the target URL.
    await closeDispatchers();
    const dead = await freePort();
    const err = await rejects(() => downloadToFile(`http://127.0.0.1:${dead}/x`, join(dir.path, 'out'), 'sha256', { ...FAST, retries: 1, env: { all_proxy: `socks5://${proxy!.address}` } }), /./);
    assert.match(err.message, new RegExp(`^download of http://127\\.0\\.0\\.1:${dead}/x failed: .*\\(via socks5 proxy socks5://127\\.0\\.0\\.1:${proxy.port}\\) \\(after 1 retry\\)$`));
    assert.match(err.message, /rejected/i);
  } finally {
    await proxy?.stop();
    await origin.close();
    await closeDispatchers();
    dir.remove();
  }
});

test.run();
