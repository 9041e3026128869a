/**
 * The `GET /v2/` ping that finds a registry's endpoint, shared by the pulling client and the
 * sync's registry hosts. It is https; with TLS verification off (skopeo's --tls-verify=false) the
 * registry may also be plain http, which skopeo tries only after https has failed. Here both are
 * asked at once, and https still decides: its answer wins whenever there is one, and the plain
 * http answer is used only when https failed in transport (a TLS or connection error). A
 * registry on plain http thus costs one round trip, not a failed handshake and then one. Pings
 * carry no credentials, so asking over plain http reveals nothing.
 */
import { request, type FetchOptions } from '../fetch/index.js';
import { RegistryError, describeErrorBody, readSmall } from './errors.js';

export interface Endpoint {
  /** `https://host` or `http://host`. */
  base: string;
  /** The WWW-Authenticate challenge of a 401 answer, for the authenticator. */
  challenge?: string;
}

const TLS_TROUBLE = /certificate|self[- ]signed|SSL|TLS|EPROTO|wrong version number|packet length/i;

/** One `GET <base>/v2/`: 200, or 401 with a challenge, is a registry; anything else an error. */
async function pingAt(domain: string, base: string, fetchOpts: FetchOptions): Promise<Endpoint> {
  const res = await request(`${base}/v2/`, {}, fetchOpts);
  const body = await readSmall(res.body);
  if (res.status === 200) return { base };
  if (res.status === 401) {
    const challenge = res.headers['www-authenticate'];
    if (challenge === undefined) throw new RegistryError(`registry ${domain}: GET ${base}/v2/ answered 401 without a WWW-Authenticate challenge`, 'UNAUTHORIZED', { status: 401 });
    return { base, challenge };
  }
  const said = describeErrorBody(body).text;
  const code = res.status === 404 ? 'NOT_A_REGISTRY' : 'HTTP';
  throw new RegistryError(`registry ${domain}: GET ${base}/v2/ answered HTTP ${res.status}${res.status === 404 ? ' (not a registry v2 API)' : ''}${said ? `: ${said}` : ''}`, code, { status: res.status });
}

/** The one-line error when neither way reached a registry. */
function unreachable(domain: string, httpsErr: unknown, httpErr?: unknown): Error {
  if (httpsErr instanceof RegistryError && httpErr === undefined) return httpsErr;
  const text = (e: unknown): string => (e instanceof Error ? e.message : String(e));
  let msg = `cannot reach registry ${domain}: ${text(httpsErr)}`;
  if (httpErr !== undefined) msg += `; over plain http: ${text(httpErr)}`;
  else if (TLS_TROUBLE.test(text(httpsErr))) msg += " (for a plain-http or self-signed registry: --tls-verify=false, or trust its CA with NIX_SSL_CERT_FILE=ca.pem or --curl-opts '--cacert ca.pem')";
  return new RegistryError(msg, 'HTTP', { cause: httpsErr });
}

/** Whether https failed so that plain http may be used instead: a transport failure, not a registry's answer. */
function mayFallBack(err: unknown): boolean {
  return !(err instanceof RegistryError) || err.code === 'HTTP';
}

/**
 * Finds where `apiHost` (the registry `domain`) answers the v2 API. `fetchOpts.insecure` allows
 * plain http, as above.
 */
export async function findEndpoint(domain: string, apiHost: string, fetchOpts: FetchOptions): Promise<Endpoint> {
  if (!fetchOpts.insecure) {
    try {
      return await pingAt(domain, `https://${apiHost}`, fetchOpts);
    } catch (err) {
      throw unreachable(domain, err);
    }
  }
  // Plain http is asked alongside, and cancelled once https has answered.
  const cancel = new AbortController();
  const signal = fetchOpts.signal ? AbortSignal.any([fetchOpts.signal, cancel.signal]) : cancel.signal;
  const plain = pingAt(domain, `http://${apiHost}`, { ...fetchOpts, signal }).then(
    (endpoint) => ({ endpoint }),
    (error: unknown) => ({ error }),
  );
  try {
    const secure = await pingAt(domain, `https://${apiHost}`, fetchOpts);
    cancel.abort();
    return secure;
  } catch (err) {
    if (!mayFallBack(err)) {
      cancel.abort();
      throw unreachable(domain, err);
    }
    const other = await plain;
    if ('endpoint' in other) return other.endpoint;
    throw unreachable(domain, err, other.error);
  }
}
