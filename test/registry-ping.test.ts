// The registry ping with TLS verification off asks https and plain http at once: https decides
// whenever it answers (the plain answer and its challenge are dropped), plain http is used only
// when https fails in transport, and with verification on plain http is never asked.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Socket } from 'node:net';
import { closeDispatchers } from '../lib/fetch/index.js';
import { findEndpoint } from '../lib/registry/index.js';
import { rejects } from './helpers/assert.js';
import { makeTlsFiles } from './helpers/http-servers.js';
import { tempDir } from './helpers/tmp.js';

type Answer = (req: IncomingMessage, res: ServerResponse) => void;
const FAST = { retries: 0 };

/**
 * One port answering both TLS and plain HTTP, told apart by the first byte (22 opens a TLS
 * handshake), as no real registry does: it lets one test see which answer the ping used.
 */
async function dualServer(tls: { key: string; cert: string } | undefined, overTls: Answer, plain: Answer): Promise<{ host: string; asked: string[]; close: () => Promise<void> }> {
  const asked: string[] = [];
  const record = (how: string, answer: Answer): Answer => (req, res) => {
    asked.push(`${how} ${req.method} ${req.url} ${req.headers.authorization ?? ''}`.trim());
    answer(req, res);
  };
  const https = tls ? createHttpsServer(tls, record('https', overTls)) : undefined;
  const http = createHttpServer(record('http', plain));
  const sockets = new Set<Socket>();
  const front = createNetServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.once('readable', () => {
      const first = socket.read(1) as Buffer | null;
      if (!first) return;
      socket.unshift(first);
      if (first[0] === 22) {
        if (https) https.emit('connection', socket);
        else socket.destroy();
      } else {
        http.emit('connection', socket);
      }
    });
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const { port } = front.address() as { port: number };
  return {
    host: `127.0.0.1:${port}`,
    asked,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    },
  };
}

const ok: Answer = (_req, res) => res.end('{}');
const challenge = (realm: string): Answer => (_req, res) => {
  res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="test"` });
  res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
};

test('tls-verify off: https wins whenever it answers; its challenge, not plain http\'s, is kept', async () => {
  const t = tempDir();
  const files = await makeTlsFiles(t.path);
  const srv = await dualServer(files, challenge('https://auth.example/token'), challenge('http://evil.example/token'));
  try {
    const found = await findEndpoint('reg.test', srv.host, { insecure: true, ...FAST });
    assert.is(found.base, `https://${srv.host}`);
    assert.is(found.challenge, 'Bearer realm="https://auth.example/token",service="test"');
    assert.ok(srv.asked.every((a) => a.endsWith('GET /v2/')), `pings carry no credentials: ${srv.asked.join('; ')}`);
  } finally {
    await srv.close();
    await closeDispatchers();
    t.remove();
  }
});

test('tls-verify off: a plain-http registry is found by the http ping once https fails', async () => {
  const srv = await dualServer(undefined, ok, challenge('http://auth.test/token'));
  try {
    const found = await findEndpoint('reg.test', srv.host, { insecure: true, ...FAST });
    assert.is(found.base, `http://${srv.host}`);
    assert.is(found.challenge, 'Bearer realm="http://auth.test/token",service="test"');
  } finally {
    await srv.close();
    await closeDispatchers();
  }
});

test('tls-verify off: an https answer that is not a registry\'s is the error; plain http is not used', async () => {
  const t = tempDir();
  const files = await makeTlsFiles(t.path);
  const srv = await dualServer(files, (_req, res) => { res.statusCode = 404; res.end('nothing here'); }, ok);
  try {
    await rejects(() => findEndpoint('reg.test', srv.host, { insecure: true, ...FAST }), /^registry reg\.test: GET https:\/\/127\.0\.0\.1:\d+\/v2\/ answered HTTP 404 \(not a registry v2 API\)/);
  } finally {
    await srv.close();
    await closeDispatchers();
    t.remove();
  }
});

test('tls-verify on: plain http is never asked, and the TLS failure says what to do', async () => {
  const srv = await dualServer(undefined, ok, ok);
  try {
    await rejects(() => findEndpoint('reg.test', srv.host, FAST), /^cannot reach registry reg\.test: .*\(for a plain-http or self-signed registry: --tls-verify=false, or trust its CA with NIX_SSL_CERT_FILE=ca\.pem or --curl-opts '--cacert ca\.pem'\)$/);
    assert.equal(srv.asked, []);
  } finally {
    await srv.close();
    await closeDispatchers();
  }
});

test('tls-verify off, neither answers: one error naming both attempts', async () => {
  const srv = await dualServer(undefined, ok, (req) => req.socket.destroy());
  try {
    await rejects(() => findEndpoint('reg.test', srv.host, { insecure: true, ...FAST }), /^cannot reach registry reg\.test: .*; over plain http: /);
  } finally {
    await srv.close();
    await closeDispatchers();
  }
});

test.run();
