/**
 * Loopback HTTP(S) servers for the fetch tests, including misbehaving ones: a file server
 * whose successive requests can drop the connection mid-body, stall, ignore Range or answer
 * with an error status; and a throwaway CA made with openssl for TLS.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { runOk } from './run.js';

export interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, index: number) => void;

export interface TestServer {
  host: string;
  port: number;
  /** e.g. http://127.0.0.1:1234 */
  origin: string;
  url(path: string): string;
  /** Every request received, in order. */
  requests: Recorded[];
  close(): Promise<void>;
}

export interface TlsFiles {
  caFile: string;
  key: string;
  cert: string;
}

/** Starts a server on a free port of `host` (default 127.0.0.1); HTTPS when `tls` is given. */
export async function startServer(handler: Handler, opts: { host?: string; tls?: TlsFiles } = {}): Promise<TestServer> {
  const host = opts.host ?? '127.0.0.1';
  const requests: Recorded[] = [];
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const index = requests.length;
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res, index);
  };
  const server: Server = opts.tls ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, onRequest) : createHttpServer(onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `${opts.tls ? 'https' : 'http'}://${host}:${port}`;
  return {
    host,
    port,
    origin,
    url: (path) => `${origin}${path}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What the file server does for one request. */
export type Step =
  | { kind: 'ok' }
  /** Announce the full length, send `after` bytes of the body, then cut the connection. */
  | { kind: 'drop'; after: number; ignoreRange?: boolean }
  /** Announce the full length, send `after` bytes, then go silent (connection left open). */
  | { kind: 'stall'; after: number; ignoreRange?: boolean }
  /** Answer with this status and an empty body. */
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  /** Answer 200 with the whole body even if Range was asked. */
  | { kind: 'full' }
  /** Answer with 206 but these raw headers (to test consistency checks); `{start}` in contentRange becomes the requested start. */
  | { kind: 'bad-range'; contentRange: string; contentLength?: number };

export interface FileServerSpec {
  data: Buffer;
  etag?: string;
  /** Whether Range is honoured in 'ok' steps (default true). */
  ranges?: boolean;
  /** Behaviour of request i; requests beyond the plan get `ok`. */
  plan?: readonly Step[];
}

/** A handler serving `spec.data` at any path, following the plan request by request. */
export function fileHandler(spec: FileServerSpec): Handler {
  const { data } = spec;
  return (req, res, index) => {
    const step: Step = spec.plan?.[index] ?? { kind: 'ok' };
    const base: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (spec.etag) base.etag = spec.etag;
    if (step.kind === 'status') {
      res.writeHead(step.status, { ...base, 'content-length': '0', ...step.headers });
      res.end();
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    const ignore = step.kind === 'full' || ((step.kind === 'drop' || step.kind === 'stall') && step.ignoreRange === true);
    const rangeOk = !ignore && (spec.ranges ?? true) && range !== null && (ifRange === undefined || ifRange === spec.etag);
    if (step.kind === 'bad-range') {
      const start = range ? Number(range[1]) : 0;
      const headers: Record<string, string> = { ...base, 'content-range': step.contentRange.replace('{start}', String(start)) };
      const body = data.subarray(start);
      headers['content-length'] = String(step.contentLength ?? body.length);
      res.writeHead(206, headers);
      res.end(body.subarray(0, step.contentLength ?? body.length));
      return;
    }
    let start = 0;
    if (rangeOk) {
      start = Number(range[1]);
      if (start >= data.length) {
        res.writeHead(416, { ...base, 'content-range': `bytes */${data.length}`, 'content-length': '0' });
        res.end();
        return;
      }
      res.writeHead(206, { ...base, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}`, 'content-length': String(data.length - start) });
    } else {
      res.writeHead(200, { ...base, 'content-length': String(data.length) });
    }
    const body = data.subarray(start);
    if (step.kind === 'drop') {
      res.write(body.subarray(0, step.after), () => res.socket?.destroy());
    } else if (step.kind === 'stall') {
      res.write(body.subarray(0, step.after));
    } else {
      res.end(body);
    }
  };
}

/** Bytes that differ at every position (so a misplaced resume changes the hash). */
export function testBytes(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * A self-signed CA (`openssl req -x509`) and a server certificate it signed, valid for
 * localhost, 127.0.0.1 and 127.0.0.2. Files are written into `dir`.
 */
export async function makeTlsFiles(dir: string): Promise<TlsFiles & { keyFile: string; certFile: string }> {
  const p = (f: string): string => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await runOk('openssl', ['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2',
    '-subj', '/CN=fetch-image test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await runOk('openssl', ['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=localhost']);
  writeFileSync(p('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  await runOk('openssl', ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial',
    '-out', p('server.pem'), '-days', '2', '-extfile', p('ext.cnf')]);
  return {
    caFile: p('ca.pem'),
    keyFile: p('server.key'),
    certFile: p('server.pem'),
    key: readFileSync(p('server.key'), 'utf8'),
    cert: readFileSync(p('server.pem'), 'utf8'),
  };
}
