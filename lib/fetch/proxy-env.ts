/** Which proxy (if any) a URL goes through, from the environment as curl reads it. */
import { BlockList, isIP } from 'node:net';
import { redactUrl } from './errors.js';

export type ProxyKind = 'http' | 'https' | 'socks4' | 'socks4a' | 'socks5' | 'socks5h';

export interface ProxyChoice {
  kind: ProxyKind;
  /** Host name or IP literal, without IPv6 brackets. */
  host: string;
  port: number;
  username?: string;
  password?: string;
  /** Normalised URL with an explicit port (it carries the credentials, never print it). */
  href: string;
}

const SCHEMES: Record<string, ProxyKind> = {
  http: 'http',
  https: 'https',
  // curl treats a bare socks:// as SOCKS4.
  socks: 'socks4',
  socks4: 'socks4',
  socks4a: 'socks4a',
  socks5: 'socks5',
  socks5h: 'socks5h',
};

/** Parses a proxy setting as curl does: no scheme means http, no port means 1080 (443 for https). */
export function parseProxyUrl(text: string): ProxyChoice {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  const scheme = withScheme.slice(0, withScheme.indexOf(':')).toLowerCase();
  const kind = SCHEMES[scheme];
  if (!kind) throw new Error(`unsupported proxy scheme '${scheme}' in proxy '${redactUrl(withScheme)}'`);
  // URL() drops a port equal to the scheme's default (http://p:80 → ''), so read it ourselves.
  const authority = /^[^:]+:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)(?::(\d*))?/.exec(withScheme);
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`invalid proxy URL '${redactUrl(withScheme)}'`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host || !authority) throw new Error(`invalid proxy URL '${redactUrl(withScheme)}': no host`);
  const explicit = authority[2];
  const port = explicit ? Number(explicit) : kind === 'https' ? 443 : 1080;
  const hostForUrl = isIP(host) === 6 ? `[${host}]` : host;
  const cred = url.username ? `${url.username}${url.password ? `:${url.password}` : ''}@` : '';
  const choice: ProxyChoice = { kind, host, port, href: `${scheme === 'socks' ? 'socks4' : scheme}://${cred}${hostForUrl}:${port}` };
  if (url.username) choice.username = decodeURIComponent(url.username);
  if (url.password) choice.password = decodeURIComponent(url.password);
  return choice;
}

function envValue(env: NodeJS.ProcessEnv, names: readonly string[]): string | undefined {
  for (const name of names) {
    const v = env[name];
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

/** The no_proxy list from the environment; lower case wins. */
export function noProxyFromEnv(env: NodeJS.ProcessEnv): string {
  return env.no_proxy ?? env.NO_PROXY ?? '';
}

export interface ProxyOverride {
  /** From `-x`: used for every scheme; '' disables proxies. */
  proxy?: string;
  /** From `--noproxy`: replaces no_proxy. */
  noProxy?: string;
  /** From `--proxy-user`: `user[:password]` for whichever proxy is chosen (replaces the URL's). */
  proxyUser?: string;
}

/** The proxy with `user[:password]` as its credentials. */
function withProxyUser(choice: ProxyChoice, userPass: string): ProxyChoice {
  const colon = userPass.indexOf(':');
  const username = colon < 0 ? userPass : userPass.slice(0, colon);
  const password = colon < 0 ? '' : userPass.slice(colon + 1);
  const scheme = choice.href.slice(0, choice.href.indexOf(':'));
  const host = isIP(choice.host) === 6 ? `[${choice.host}]` : choice.host;
  const cred = `${encodeURIComponent(username)}${password ? `:${encodeURIComponent(password)}` : ''}@`;
  const out: ProxyChoice = { kind: choice.kind, host: choice.host, port: choice.port, href: `${scheme}://${cred}${host}:${choice.port}`, username };
  if (password) out.password = password;
  return out;
}

/**
 * The proxy for `target`, or null for a direct connection. Reads `<scheme>_proxy` and
 * `all_proxy` (lower case first, then upper case) and `no_proxy`/`NO_PROXY`. Like curl,
 * upper-case HTTP_PROXY is ignored: in CGI-style environments it can be set by a request
 * header ("httpoxy").
 */
export function selectProxy(target: URL, env: NodeJS.ProcessEnv, override: ProxyOverride = {}): ProxyChoice | null {
  const scheme = target.protocol.replace(/:$/, '');
  let setting: string | undefined;
  if (override.proxy !== undefined) {
    setting = override.proxy;
  } else {
    const schemeVars = scheme === 'http' ? ['http_proxy'] : [`${scheme}_proxy`, `${scheme.toUpperCase()}_PROXY`];
    setting = envValue(env, [...schemeVars, 'all_proxy', 'ALL_PROXY']);
  }
  if (!setting) return null;
  const noProxy = override.noProxy ?? noProxyFromEnv(env);
  const port = target.port ? Number(target.port) : scheme === 'https' ? 443 : 80;
  if (matchesNoProxy(target.hostname, port, noProxy)) return null;
  const choice = parseProxyUrl(setting);
  return override.proxyUser === undefined ? choice : withProxyUser(choice, override.proxyUser);
}

/**
 * Whether `host:port` bypasses the proxy per a no_proxy list. Entries are separated by commas
 * or spaces: `*` (everything), a host name (matches it and its subdomains; a leading `.` or
 * `*.` is ignored, as curl does), `host:port`, an IP literal (`[v6]` or `[v6]:port` too), or a
 * CIDR block such as `10.0.0.0/8`.
 */
export function matchesNoProxy(host: string, port: number, list: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  const hostIp = isIP(h);
  for (const raw of list.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    let name = entry;
    let entryPort: number | undefined;
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    if (bracketed) {
      name = bracketed[1]!;
      if (bracketed[2]) entryPort = Number(bracketed[2]);
    } else if (!name.includes('/') && name.split(':').length === 2) {
      const [n, p] = name.split(':') as [string, string];
      if (!/^\d+$/.test(p)) continue;
      name = n;
      entryPort = Number(p);
    }
    if (entryPort !== undefined && entryPort !== port) continue;
    if (name.includes('/')) {
      if (hostIp && inCidr(h, hostIp, name)) return true;
      continue;
    }
    const nameIp = isIP(name);
    if (nameIp) {
      if (hostIp === nameIp && sameAddress(h, name, nameIp)) return true;
      continue;
    }
    const domain = name.replace(/^\*?\./, '').replace(/\.$/, '');
    if (domain !== '' && (h === domain || h.endsWith(`.${domain}`))) return true;
  }
  return false;
}

function sameAddress(a: string, b: string, family: number): boolean {
  const list = new BlockList();
  list.addAddress(b, family === 6 ? 'ipv6' : 'ipv4');
  return list.check(a, family === 6 ? 'ipv6' : 'ipv4');
}

function inCidr(ip: string, family: number, cidr: string): boolean {
  const [net, bits] = cidr.split('/') as [string, string | undefined];
  const netFamily = isIP(net);
  if (netFamily !== family || bits === undefined || !/^\d+$/.test(bits)) return false;
  const type = family === 6 ? 'ipv6' : 'ipv4';
  const list = new BlockList();
  try {
    list.addSubnet(net, Number(bits), type);
  } catch {
    return false;
  }
  return list.check(ip, type);
}
