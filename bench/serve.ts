import { createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';

/** A static file server on loopback for benchmarks: GET /<name> streams the mapped file. */
export async function serveFiles(files: Record<string, string>): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = files[(req.url ?? '').slice(1)];
    if (!path) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': statSync(path).size, 'content-type': 'application/octet-stream' });
    createReadStream(path, { highWaterMark: 1 << 20 }).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}
