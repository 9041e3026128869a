/**
 * undici dispatchers for a direct connection, an HTTP(S) proxy or a SOCKS proxy, cached by
 * their configuration so that keep-alive connections are reused across requests.
 *
 * SOCKS: undici 7 ships an experimental Socks5ProxyAgent, but it speaks SOCKS5 only, always
 * sends host names to the proxy (no local resolution for socks5://, no SOCKS4) and hard-codes
 * 5 s timeouts. proxy-agent/socks-proxy-agent are node:http Agents, which undici cannot use.
 * So we give a plain undici Agent a custom `connect` that opens the tunnel with the `socks`
 * library (the one socks-proxy-agent uses) and wraps it in TLS ourselves for https targets.
 */
import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Dispatcher, buildConnector } from 'undici';
import { loadUndici, type UndiciCore } from './undici.js';
import type { ProxyChoice } from './proxy-env.js';

export interface TransportConfig {
  proxy: ProxyChoice | null;
  /** PEM CA bundle replacing the system roots, as curl's --cacert does. */
  ca: string | undefined;
  insecure: boolean;
  connectTimeoutMs: number;
  /** A Proxy-Authorization value given as a header (curl -H); else the proxy URL's credentials are used. */
  proxyAuthorization?: string | undefined;
}

const cache = new Map<string, Dispatcher>();

export async function dispatcherFor(cfg: TransportConfig): Promise<Dispatcher> {
  const key = createHash('sha256')
    .update(JSON.stringify([cfg.proxy?.href ?? null, cfg.proxy?.kind ?? null, cfg.ca ?? null, cfg.insecure, cfg.connectTimeoutMs, cfg.proxyAuthorization ?? null]))
    .digest('hex');
  let d = cache.get(key);
  if (!d) {
    d = makeDispatcher(cfg, await loadUndici());
    cache.set(key, d);
  }
  return d;
}

/** Closes every cached dispatcher (and so their idle connections). */
export async function closeDispatchers(): Promise<void> {
  const all = [...cache.values()];
  cache.clear();
  await Promise.all(all.map((d) => d.destroy().catch(() => undefined)));
}

function tlsOptions(cfg: TransportConfig): { ca?: string; rejectUnauthorized: boolean } {
  return cfg.ca === undefined ? { rejectUnauthorized: !cfg.insecure } : { ca: cfg.ca, rejectUnauthorized: !cfg.insecure };
}

function makeDispatcher(cfg: TransportConfig, { Agent, ProxyAgent }: UndiciCore): Dispatcher {
  const tls = tlsOptions(cfg);
  // HTTP/1.1 only: the stall/length logic and proxies below are written for it.
  const common = { allowH2: false, keepAliveTimeout: 4_000 };
  const proxy = cfg.proxy;
  if (!proxy) {
    return new Agent({ ...common, connect: { ...tls, timeout: cfg.connectTimeoutMs } });
  }
  if (proxy.kind === 'http' || proxy.kind === 'https') {
    // proxyTunnel: false → plain forwarding (absolute-URI requests) for http:// targets, as
    // curl does; https:// targets always go through CONNECT. Proxy-Authorization goes to the
    // proxy alone (undici refuses it among a request's headers).
    const basic = proxy.username === undefined ? undefined : `Basic ${Buffer.from(`${proxy.username}:${proxy.password ?? ''}`).toString('base64')}`;
    const token = cfg.proxyAuthorization ?? basic;
    return new ProxyAgent({
      ...common,
      uri: proxy.href,
      ...(token === undefined ? {} : { token }),
      proxyTunnel: false,
      requestTls: { ...tls, timeout: cfg.connectTimeoutMs },
      proxyTls: { ...tls, timeout: cfg.connectTimeoutMs },
    });
  }
  return new Agent({ ...common, connect: socksConnector(proxy, tls, cfg.connectTimeoutMs) });
}

function socksConnector(proxy: ProxyChoice, tls: { ca?: string; rejectUnauthorized: boolean }, timeoutMs: number): buildConnector.connector {
  return (opts, callback) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new Error(`connect timeout after ${timeoutMs} ms (via SOCKS proxy)`) as Error & { code: string };
        err.code = 'UND_ERR_CONNECT_TIMEOUT';
        reject(err);
      }, timeoutMs);
    });
    let opened: Socket | undefined;
    const work = (async (): Promise<Socket> => {
      const https = opts.protocol === 'https:';
      const port = opts.port ? Number(opts.port) : https ? 443 : 80;
      const name = opts.hostname.replace(/^\[(.*)\]$/, '$1');
      let destination = name;
      // socks4:// and socks5:// resolve locally, socks4a:// and socks5h:// let the proxy do it.
      if ((proxy.kind === 'socks4' || proxy.kind === 'socks5') && !isIP(name)) {
        destination = (await lookup(name, { family: proxy.kind === 'socks4' ? 4 : 0 })).address;
      }
      const { SocksClient } = await import('socks'); // only SOCKS users pay for it
      const { socket } = await SocksClient.createConnection({
        proxy: {
          host: proxy.host,
          port: proxy.port,
          type: proxy.kind === 'socks4' || proxy.kind === 'socks4a' ? 4 : 5,
          ...(proxy.username === undefined ? {} : { userId: proxy.username }),
          ...(proxy.password === undefined ? {} : { password: proxy.password }),
        },
        command: 'connect',
        destination: { host: destination, port },
        timeout: timeoutMs,
      }).catch((err: unknown) => {
        throw socksError(err);
      });
      opened = socket;
      if (!https) return socket;
      const servername = opts.servername ?? (isIP(name) ? undefined : name);
      const secure = tlsConnect({ socket, ...tls, ...(servername ? { servername } : {}), ALPNProtocols: ['http/1.1'] });
      opened = secure;
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', resolve);
        secure.once('error', reject);
      });
      return secure;
    })();
    Promise.race([work, timeout]).then(
      (socket) => {
        clearTimeout(timer);
        callback(null, socket);
      },
      (err: unknown) => {
        clearTimeout(timer);
        opened?.destroy();
        work.then((s) => s.destroy(), () => undefined);
        callback(err instanceof Error ? err : new Error(String(err)), null);
      },
    );
  };
}

/** The socks library's errors have no code; give them one the retry logic knows. */
function socksError(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as NodeJS.ErrnoException).code;
  if (code) return e;
  return Object.assign(new Error(e.message), { code: 'ESOCKS' });
}
