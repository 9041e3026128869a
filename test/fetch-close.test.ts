// A server that closes the connection right after the body (HTTP/1.0 style) while our consumer
// is still busy: unpatched undici 7 crashes the whole process when the peer's FIN meets a parser
// paused on the last bytes (nodejs/undici#5360; see scripts/patch-undici.mjs). That timing is
// not deterministic, so this runs several rounds; it must always simply complete.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { downloadToFile, request } from '../lib/fetch/index.js';
import { tempDir } from './helpers/tmp.js';

const BODY = Buffer.alloc(4 * 1024 * 1024, 0x61);

async function closingServer(): Promise<{ url: string; server: Server }> {
  const server = createServer((sock) => {
    sock.once('data', () => {
      // As Python's http.server does: HTTP/1.0, the body in 64 KiB writes, then FIN.
      sock.write(`HTTP/1.0 200 OK\r\nContent-Length: ${BODY.length}\r\n\r\n`);
      for (let off = 0; off < BODY.length; off += 65536) sock.write(BODY.subarray(off, off + 65536));
      sock.end();
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return { url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/f`, server };
}

test('body read slowly after the server closed: complete, no crash', async () => {
  const { url, server } = await closingServer();
  try {
    // The crash needs the parser to pause on the very last bytes; a slow reader makes it likely.
    for (let round = 0; round < 5; round++) {
      const res = await request(url, {}, { retries: 0 });
      await new Promise((r) => setTimeout(r, 100)); // the parser pauses, the peer's FIN arrives
      let n = 0;
      const h = createHash('sha256');
      for await (const c of res.body) {
        n += (c as Buffer).length;
        h.update(c as Buffer);
        await new Promise((r) => setImmediate(r));
      }
      assert.is(n, BODY.length);
      assert.is(h.digest('hex'), createHash('sha256').update(BODY).digest('hex'));
    }
  } finally {
    server.close();
  }
});

test('downloadToFile from a closing server', async () => {
  const { url, server } = await closingServer();
  const t = tempDir();
  try {
    for (let round = 0; round < 10; round++) {
      const r = await downloadToFile(url, join(t.path, 'f'), 'sha256', { retries: 0 });
      assert.is(r.size, BODY.length);
      assert.ok(readFileSync(join(t.path, 'f')).equals(BODY));
    }
  } finally {
    server.close();
    t.remove();
  }
});

test.run();
