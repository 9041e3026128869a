/**
 * A token server for the real registry's `auth: token` mode (Docker Hub's Bearer flow).
 *
 * distribution 2.8 (registry/auth/token) verifies each JWT with a key it trusts from
 * `rootcertbundle`: either the header's `x5c` certificate chain (verified against those roots)
 * or, as here by default, the header's `kid`, which must equal the libtrust key ID of a root
 * certificate's public key (base32 of the first 240 bits of sha256 over the DER
 * SubjectPublicKeyInfo, in 12 groups of 4 joined by ':'). It then checks `iss` (= issuer),
 * `aud` (= service), `exp`/`nbf` (with 60 s leeway) and that `access` grants the action.
 *
 * Endpoints: `GET /token?service=&scope=&account=` (Basic credentials optional) and
 * `POST /token` with an OAuth2 form (grant_type=password or refresh_token), as docker uses.
 */
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TokenServerOptions {
  /** `aud` of the tokens and the registry's `service` (default `fetch-image-registry`). */
  service?: string;
  /** `iss` of the tokens (default `fetch-image-token-server`). */
  issuer?: string;
  /** Accounts; when given, Basic credentials are checked against them. */
  users?: Record<string, string>;
  /** Refresh tokens accepted by the OAuth2 POST (refresh token → user). */
  refreshTokens?: Record<string, string>;
  /** Whether anonymous clients get pull access (default: true when no users are configured). */
  anonymousPull?: boolean;
  /** `expires_in` of the answers and JWT lifetime in seconds (default 300). */
  expiresIn?: number;
  /** Which field carries the token (default both `token` and `access_token`). */
  tokenField?: 'token' | 'access_token' | 'both';
  /** Key type (default EC P-256, signing with ES256; rsa signs with RS256). */
  keyType?: 'ec' | 'rsa';
  /** How the JWT names its key (default `kid`). */
  keyRef?: 'kid' | 'x5c';
}

export interface TokenRequest {
  method: string;
  scopes: string[];
  service: string | undefined;
  /** The user that authenticated, if any. */
  user: string | undefined;
  /** Whether an Authorization header was present (its value is never recorded). */
  sentCredentials: boolean;
  /** Whether a Cookie header was present (its value is never recorded). */
  sentCookie: boolean;
  /** What the issued token grants (empty when refused). */
  granted: Access[];
  status: number;
}

export interface Access {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenServer {
  port: number;
  /** `http://127.0.0.1:PORT/token`. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM file of the signing certificate, for the registry's `rootcertbundle`. */
  rootCertBundle: string;
  /** The key ID distribution computes for that certificate. */
  keyId: string;
  requests: TokenRequest[];
  /** The next `n` tokens grant nothing (the registry then answers 401 insufficient_scope). */
  grantNothing(n: number): void;
  /** The `auth:` block of a distribution config that trusts this server. */
  registryAuthConfig(): string;
  stop(): Promise<void>;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** libtrust's KeyID: sha256 of the DER public key, first 30 bytes, base32, 4-char groups. */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const b32 = base32(createHash('sha256').update(der).digest().subarray(0, 30));
  return b32.match(/.{4}/g)!.join(':');
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Parses `type:name:actions`; the name may itself contain ':' (a registry host with port). */
export function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last <= first) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) };
}

function basicUser(req: IncomingMessage): { user: string; password: string } | undefined {
  const h = req.headers.authorization;
  if (!h || !/^basic /i.test(h)) return undefined;
  const decoded = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i < 0 ? undefined : { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

export async function startTokenServer(opts: TokenServerOptions = {}): Promise<TokenServer> {
  const service = opts.service ?? 'fetch-image-registry';
  const issuer = opts.issuer ?? 'fetch-image-token-server';
  const expiresIn = opts.expiresIn ?? 300;
  const users = opts.users;
  const anonymousPull = opts.anonymousPull ?? users === undefined;
  const dir = mkdtempSync(join(tmpdir(), 'fi-token-server-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  const keyArgs = opts.keyType === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  try {
    await run('openssl', ['req', '-x509', ...keyArgs, '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=fetch-image token server']);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`token server: openssl could not make a key: ${(err as Error).message}`);
  }
  const privateKey = createPrivateKey(readFileSync(keyPath));
  const keyId = libtrustKeyId(createPublicKey(privateKey));
  const certDer = Buffer.from(readFileSync(certPath, 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const alg = opts.keyType === 'rsa' ? 'RS256' : 'ES256';

  const requests: TokenRequest[] = [];
  let nothingLeft = 0;

  const issue = (user: string | undefined, access: Access[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = opts.keyRef === 'x5c' ? { typ: 'JWT', alg, x5c: [certDer.toString('base64')] } : { typ: 'JWT', alg, kid: keyId };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + expiresIn, nbf: now - 1, iat: now, jti: randomBytes(12).toString('hex'), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    // JWS wants ECDSA signatures as raw r||s, not DER.
    const sig = sign('sha256', Buffer.from(input), alg === 'ES256' ? { key: privateKey, dsaEncoding: 'ieee-p1363' } : privateKey);
    return `${input}.${b64url(sig)}`;
  };

  const grant = (user: string | undefined, scopes: string[]): Access[] => {
    if (nothingLeft > 0) {
      nothingLeft--;
      return [];
    }
    const out: Access[] = [];
    for (const s of scopes) {
      const a = parseScope(s);
      if (!a || a.type !== 'repository') continue;
      const actions = user !== undefined ? a.actions : anonymousPull ? a.actions.filter((x) => x === 'pull') : [];
      if (actions.length) out.push({ ...a, actions });
    }
    return out;
  };

  const answer = (res: ServerResponse, token: string): void => {
    const field = opts.tokenField ?? 'both';
    const body: Record<string, unknown> = { expires_in: expiresIn, issued_at: new Date().toISOString() };
    if (field !== 'access_token') body.token = token;
    if (field !== 'token') body.access_token = token;
    json(res, 200, body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/token') return json(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'no such endpoint' }] });
    const record: TokenRequest = { method: req.method ?? 'GET', scopes: [], service: undefined, user: undefined, sentCredentials: req.headers.authorization !== undefined, sentCookie: req.headers.cookie !== undefined, granted: [], status: 200 };
    requests.push(record);
    let user: string | undefined;
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      record.service = form.get('service') ?? undefined;
      record.scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      const grantType = form.get('grant_type');
      if (grantType === 'refresh_token') {
        user = opts.refreshTokens?.[form.get('refresh_token') ?? ''];
      } else if (grantType === 'password') {
        const u = form.get('username') ?? '';
        user = users && users[u] !== undefined && users[u] === form.get('password') ? u : undefined;
      }
      if (user === undefined) {
        record.status = 401;
        return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid grant' }] });
      }
    } else {
      record.service = url.searchParams.get('service') ?? undefined;
      record.scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      const creds = basicUser(req);
      if (creds) {
        if (!users || users[creds.user] === undefined || users[creds.user] !== creds.password) {
          record.status = 401;
          return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] }, { 'www-authenticate': 'Basic realm="fetch-image token server"' });
        }
        user = creds.user;
      }
    }
    if (record.service !== service) {
      record.status = 400;
      return json(res, 400, { errors: [{ code: 'INVALID_SERVICE', message: `unknown service ${record.service ?? '(none)'}` }] });
    }
    record.user = user;
    record.granted = grant(user, record.scopes);
    answer(res, issue(user, record.granted));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { errors: [{ code: 'INTERNAL', message: String(err) }] });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const realm = `http://127.0.0.1:${port}/token`;
  return {
    port,
    realm,
    service,
    issuer,
    rootCertBundle: certPath,
    keyId,
    requests,
    grantNothing(n: number) {
      nothingLeft = n;
    },
    registryAuthConfig() {
      return `auth: {token: {realm: "${realm}", service: "${service}", issuer: "${issuer}", rootcertbundle: "${certPath}"}}`;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
