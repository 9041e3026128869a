/**
 * The v2 / OCI distribution client for one repository: ping and authenticate, fetch and verify
 * manifests, pick a platform from an index, and hand out blobs as verified streams or files.
 * All HTTP goes through lib/fetch (redirects without credentials, retries, Range resume).
 *
 * HTTP or HTTPS, the rule skopeo follows: always try https first; only when TLS verification is
 * off (`tlsVerify: false`, skopeo --tls-verify=false) and the https ping fails is plain http
 * tried. So a plain-http registry on localhost needs `tlsVerify: false`, as with skopeo.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { FetchError, curlUserOf, openDownload, request, writeFullyAt, type DownloadStream, type FetchOptions, type HttpResponse } from '../fetch/index.js';
import { isHashAlgo } from '../hash/index.js';
import { Authenticator, readCapped } from './auth.js';
import { DEFAULT_CREDENTIALS_HINT, findCredentials, type CredentialOptions, type Credentials } from './credentials.js';
import { RegistryError, describeErrorBody, readSmall } from './errors.js';
import {
  MANIFEST_ACCEPT, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, MEDIA_TYPES, Schema1Error, isImageManifestMediaType, isIndexMediaType,
  parseManifest, verifyBytes, type Descriptor, type ImageIndex, type ImageManifest, type Manifest,
} from './manifest.js';
import {
  availablePlatforms, formatPlatform, normalizePlatform, platformNamed, platformSatisfies, selectPlatform, variantNamed, wantedPlatform,
  type Platform, type PlatformWanted,
} from './platform.js';
import { onceUnlessFailed } from './memo.js';
import { findEndpoint, type Endpoint } from './ping.js';
import { parseReference, validateDigest, type ImageReference } from './reference.js';

export interface RegistryClientOptions extends CredentialOptions {
  /** false = skopeo --tls-verify=false: accept any certificate and allow the plain-http fallback. */
  tlsVerify?: boolean;
  /** PEM bundle to trust for the registry (and token server) instead of the system roots. */
  caFile?: string;
  /** Download settings (env, curlOpts, retries, timeouts, signal, …) passed to lib/fetch. */
  fetch?: FetchOptions;
  /** Credentials already found by the caller; skips the lookup (undefined = look them up, null = anonymous). */
  credentials?: Credentials | null;
  /** Clock for token expiry (tests). */
  now?: () => number;
  /**
   * Pings shared between clients of one run (an audit of many images on one registry): keyed by
   * API host and TLS mode, so each registry is pinged once instead of once per repository.
   */
  endpoints?: Map<string, Promise<Endpoint>>;
}

/** A manifest as fetched: the exact bytes, their digest and what they parse to. */
export interface FetchedManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  manifest: Manifest;
}

export interface ResolvedImage {
  reference: ImageReference;
  /** The index / manifest list the reference named, when it named one (top level). */
  indexDigest?: string;
  indexMediaType?: string;
  indexBytes?: Buffer;
  /** The platform's image manifest: what a pin should name (nixpkgs #283098). */
  manifestDigest: string;
  manifestMediaType: string;
  manifestBytes: Buffer;
  manifest: ImageManifest;
  configDigest: string;
  configBytes: Buffer;
  config: Record<string, unknown>;
  layers: Descriptor[];
  /** The image's platform (from the index entry, else from its config), normalised. */
  platform: Platform;
}

/** What identifies a blob: its digest, and its size and alternative URLs when known. */
export interface BlobDescriptor {
  digest: string;
  size?: number | undefined;
  /** Foreign-layer URLs; tried (without any credentials) before the registry, as containers/image does. */
  urls?: readonly string[] | undefined;
}

export interface BlobOptions {
  onProgress?: (received: number, total: number | undefined) => void;
}

/** `-u` from the curl flags, as registry credentials (so that token and Basic auth use them too). */
function curlUser(fetchOpts: FetchOptions): { curlUser?: string } {
  const user = curlUserOf(fetchOpts);
  return user === undefined ? {} : { curlUser: user };
}

/** Index nesting we follow before calling it a loop. */
const MAX_INDEX_DEPTH = 4;

function isAlgo(s: string): s is 'sha256' | 'sha512' {
  return isHashAlgo(s) && (s === 'sha256' || s === 'sha512');
}

export class RegistryClient {
  readonly ref: ImageReference;
  private readonly fetchOpts: FetchOptions;
  private readonly auth: Authenticator;
  private readonly base = onceUnlessFailed(() => this.ping());
  private readonly scope: string;
  private readonly credentialsHint: string;
  private readonly endpoints: Map<string, Promise<Endpoint>> | undefined;

  constructor(ref: ImageReference | string, opts: RegistryClientOptions = {}) {
    this.ref = typeof ref === 'string' ? parseReference(ref) : ref;
    const insecure = opts.tlsVerify === false || opts.fetch?.insecure === true;
    const env = opts.env ?? opts.fetch?.env;
    this.fetchOpts = {
      ...opts.fetch,
      ...(env ? { env } : {}),
      insecure,
      ...(opts.caFile !== undefined ? { caFile: opts.caFile } : {}),
    };
    this.scope = `repository:${this.ref.path}:pull`;
    const given = opts.credentials;
    this.credentialsHint = opts.credentialsHint ?? DEFAULT_CREDENTIALS_HINT;
    this.endpoints = opts.endpoints;
    this.auth = new Authenticator({
      registry: this.ref.domain,
      credentials: given === null ? async () => undefined : given !== undefined ? async () => given : () => findCredentials(this.ref, { ...opts, ...curlUser(this.fetchOpts) }),
      fetch: this.fetchOpts,
      credentialsHint: this.credentialsHint,
      ...(opts.now ? { now: opts.now } : {}),
    });
  }

  /** `https://host` or `http://host` once the registry answered a ping. */
  endpoint(): Promise<string> {
    return this.base();
  }

  private async ping(): Promise<string> {
    const key = `${this.fetchOpts.insecure ? 'insecure' : 'tls'} ${this.ref.apiHost}`;
    let found = this.endpoints?.get(key);
    if (!found) {
      found = findEndpoint(this.ref.domain, this.ref.apiHost, this.fetchOpts);
      // A failed ping is not remembered: the next client asks again.
      this.endpoints?.set(key, found);
      found.catch(() => this.endpoints?.delete(key));
    }
    const { base, challenge } = await found;
    if (challenge !== undefined) this.auth.setChallenges(challenge);
    return base;
  }

  /** GET with the registry's authentication, renewing it once after a 401. */
  private async authedGet(url: string, headers: Record<string, string>): Promise<{ res: HttpResponse }> {
    for (let attempt = 0; ; attempt++) {
      const sent = await this.auth.authorize(this.scope);
      const res = await request(url, { headers: { ...headers, ...(sent ? { Authorization: sent } : {}) } }, this.fetchOpts);
      if (res.status === 401 && attempt === 0 && await this.auth.unauthorized(this.scope, res.headers['www-authenticate'], sent)) {
        await readSmall(res.body);
        continue;
      }
      return { res };
    }
  }

  /** The one-line error for an unexpected answer (the body is read for its message). */
  private async statusError(what: string, res: HttpResponse): Promise<RegistryError> {
    const { text } = describeErrorBody(await readSmall(res.body));
    const said = text ? `: ${text}` : '';
    const status = res.status;
    if (status === 401) {
      const source = await this.auth.credentialSource();
      // Like Docker Hub, registries answer 401 for repositories that do not exist, too.
      const why = source
        ? `the registry refused the credentials from ${source}`
        : `the repository does not exist or needs credentials, and none were found (${this.credentialsHint})`;
      return new RegistryError(`${what}: HTTP 401 Unauthorized: ${why}${said}`, 'UNAUTHORIZED', { status });
    }
    if (status === 403) return new RegistryError(`${what}: HTTP 403 Forbidden: access denied${said}`, 'DENIED', { status });
    if (status === 404) return new RegistryError(`${what}: not found (HTTP 404${said})`, 'NOT_FOUND', { status });
    // Docker Hub says how much of its pull quota is left; worth showing when it ran out.
    const quota = res.headers['ratelimit-remaining'] !== undefined ? `, ratelimit-remaining ${res.headers['ratelimit-remaining']}` : '';
    const limit = status === 429 ? ` (rate limited${quota}; retries exhausted)` : '';
    return new RegistryError(`${what}: HTTP ${status} ${res.statusText}${limit}${said}`, 'HTTP', { status });
  }

  private wrapFetch(what: string, err: unknown): Error {
    if (err instanceof RegistryError) return err;
    if (err instanceof FetchError) return new RegistryError(`${what}: ${err.message}`, err.status === 404 ? 'NOT_FOUND' : 'HTTP', { ...(err.status !== undefined ? { status: err.status } : {}), cause: err });
    return err instanceof Error ? err : new Error(String(err));
  }

  private describe(reference: string): string {
    // A tag never contains ':', a digest always does.
    return reference.includes(':') ? `${this.ref.name}@${reference}` : `${this.ref.name}:${reference}`;
  }

  /**
   * Fetches a manifest by tag or digest. By digest, the bytes must hash to it; `expect` adds
   * the size (and media type hint) a parent descriptor gave. Refuses bodies over 4 MiB.
   */
  async getManifest(reference: string, expect: { size?: number; mediaType?: string } = {}): Promise<FetchedManifest> {
    const byDigest = reference.includes(':');
    if (byDigest) validateDigest(reference, `${this.ref.name}@${reference}`);
    const what = `manifest ${this.describe(reference)}`;
    try {
      const base = await this.endpoint();
      const { res } = await this.authedGet(`${base}/v2/${this.ref.path}/manifests/${reference}`, { Accept: MANIFEST_ACCEPT });
      if (res.status !== 200) throw await this.statusError(what, res);
      const announced = res.headers['content-length'];
      if (announced !== undefined && Number(announced) > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw new RegistryError(`${what}: ${announced} bytes is larger than the ${MAX_MANIFEST_BYTES}-byte limit for manifests`, 'TOO_LARGE');
      }
      const bytes = await readCapped(res.body, MAX_MANIFEST_BYTES, what).catch((err: unknown) => {
        if (err instanceof RegistryError) throw new RegistryError(`${what}: larger than the ${MAX_MANIFEST_BYTES}-byte limit for manifests`, 'TOO_LARGE');
        throw err;
      });
      let digest: string;
      try {
        digest = verifyBytes(bytes, { digest: byDigest ? reference : undefined, size: expect.size }, what);
      } catch (err) {
        throw new RegistryError((err as Error).message, /size mismatch/.test((err as Error).message) ? 'SIZE_MISMATCH' : 'DIGEST_MISMATCH');
      }
      let manifest: Manifest;
      try {
        manifest = parseManifest(bytes, what, { descriptorType: expect.mediaType, contentType: res.headers['content-type'] });
      } catch (err) {
        throw new RegistryError((err as Error).message, err instanceof Schema1Error ? 'UNSUPPORTED' : 'BAD_MANIFEST');
      }
      return { digest, mediaType: manifest.mediaType, bytes, manifest };
    } catch (err) {
      throw this.wrapFetch(what, err);
    }
  }

  /**
   * Resolves the reference to one image for a platform (default linux + host architecture):
   * through any index, verified at every step, with the config fetched and verified.
   */
  async resolve(want: PlatformWanted = {}): Promise<ResolvedImage> {
    const platform = wantedPlatform(want);
    const exactVariant = variantNamed(want);
    const top = await this.getManifest(this.ref.manifestRef);
    let image: FetchedManifest = top;
    let entryPlatform: Platform | undefined;
    if (top.manifest.kind === 'index') {
      const found = await this.chooseFromIndex(top as FetchedManifest & { manifest: ImageIndex }, platform, 1, exactVariant);
      if (!found) {
        const avail = availablePlatforms(top.manifest.manifests);
        throw new RegistryError(
          `${this.describe(this.ref.manifestRef)}: no image for platform ${formatPlatform(platform)} in ${top.digest}; available: ${avail.length ? avail.join(', ') : 'none'}` +
            (exactVariant ? ' (a variant given is matched exactly)' : ''),
          'NO_PLATFORM',
        );
      }
      image = found.image;
      entryPlatform = found.platform;
    }
    const manifest = image.manifest as ImageManifest;
    const { bytes: configBytes, config } = await this.getConfig(manifest.config);
    const fromConfig = typeof config.os === 'string' && typeof config.architecture === 'string'
      ? normalizePlatform({ os: config.os, architecture: config.architecture, variant: typeof config.variant === 'string' ? config.variant : '' })
      : undefined;
    // A single-platform image is taken as it is unless a platform was asked for by name; then
    // it must be that platform (skopeo would only log the mismatch and copy it anyway).
    if (top.manifest.kind === 'manifest' && fromConfig && platformNamed(want) && !platformSatisfies(fromConfig, want)) {
      throw new RegistryError(
        `${this.describe(this.ref.manifestRef)} is a single-platform image for ${formatPlatform(fromConfig)}, not ${formatPlatform(platform)}; ` +
          'pull it without a platform to take it as it is',
        'NO_PLATFORM',
      );
    }
    return {
      reference: this.ref,
      ...(top.manifest.kind === 'index' ? { indexDigest: top.digest, indexMediaType: top.mediaType, indexBytes: top.bytes } : {}),
      manifestDigest: image.digest,
      manifestMediaType: image.mediaType,
      manifestBytes: image.bytes,
      manifest,
      configDigest: manifest.config.digest,
      configBytes,
      config,
      layers: manifest.layers,
      platform: entryPlatform ?? fromConfig ?? { os: '', architecture: '', variant: '' },
    };
  }

  /**
   * The image manifest for `platform` under an index: a matching entry (first in preference
   * order, skipping attestations and unknown media types), descending into nested indexes.
   */
  private async chooseFromIndex(
    index: FetchedManifest & { manifest: ImageIndex }, platform: Platform, depth: number, exactVariant: boolean,
  ): Promise<{ image: FetchedManifest; platform: Platform | undefined } | undefined> {
    if (depth > MAX_INDEX_DEPTH) throw new RegistryError(`index ${index.digest} of ${this.ref.name}: indexes nested more than ${MAX_INDEX_DEPTH} deep`, 'BAD_MANIFEST');
    const entries = index.manifest.manifests;
    const usable = (e: Descriptor): boolean => isImageManifestMediaType(e.mediaType) || isIndexMediaType(e.mediaType);
    const visit = async (e: Descriptor): Promise<{ image: FetchedManifest; platform: Platform | undefined } | undefined> => {
      const child = await this.getManifest(e.digest, { size: e.size, mediaType: e.mediaType });
      const p = e.platform ? normalizePlatform(e.platform) : undefined;
      if (child.manifest.kind === 'manifest') return { image: child, platform: p };
      const inner = await this.chooseFromIndex(child as FetchedManifest & { manifest: ImageIndex }, platform, depth + 1, exactVariant);
      return inner && { image: inner.image, platform: inner.platform ?? p };
    };
    const match = selectPlatform(entries, platform, usable, { exactVariant });
    if (match) return visit(match);
    // Nested indexes without a platform of their own may still hold one.
    for (const e of entries) {
      if (isIndexMediaType(e.mediaType) && !e.platform) {
        const found = await visit(e);
        if (found) return found;
      }
    }
    return undefined;
  }

  /** Fetches and verifies an image config (capped at 4 MiB); it must be a JSON object. */
  async getConfig(desc: Descriptor): Promise<{ bytes: Buffer; config: Record<string, unknown> }> {
    const what = `config ${desc.digest} of ${this.ref.name}`;
    if (desc.mediaType !== MEDIA_TYPES.ociConfig && desc.mediaType !== MEDIA_TYPES.dockerConfig) {
      throw new RegistryError(`${what}: not a container image (config media type '${desc.mediaType}')`, 'UNSUPPORTED');
    }
    if (desc.size > MAX_CONFIG_BYTES) throw new RegistryError(`${what}: ${desc.size} bytes is larger than the ${MAX_CONFIG_BYTES}-byte limit for configs`, 'TOO_LARGE');
    let bytes: Buffer;
    try {
      const base = await this.endpoint();
      const { res } = await this.authedGet(`${base}/v2/${this.ref.path}/blobs/${desc.digest}`, {});
      if (res.status !== 200) throw await this.statusError(what, res);
      bytes = await readCapped(res.body, desc.size, what).catch((err: unknown) => {
        if (err instanceof RegistryError) throw new RegistryError(`${what}: size mismatch: more than the expected ${desc.size} bytes`, 'SIZE_MISMATCH');
        throw err;
      });
    } catch (err) {
      throw this.wrapFetch(what, err);
    }
    try {
      verifyBytes(bytes, { digest: desc.digest, size: desc.size }, what);
    } catch (err) {
      throw new RegistryError((err as Error).message, /size mismatch/.test((err as Error).message) ? 'SIZE_MISMATCH' : 'DIGEST_MISMATCH');
    }
    let config: unknown;
    try {
      config = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new RegistryError(`${what}: not valid JSON`, 'BAD_MANIFEST');
    }
    if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new RegistryError(`${what}: not a JSON object`, 'BAD_MANIFEST');
    return { bytes, config: config as Record<string, unknown> };
  }

  private blobAlgo(desc: BlobDescriptor): 'sha256' | 'sha512' {
    validateDigest(desc.digest, `blob ${desc.digest}`);
    const algo = desc.digest.slice(0, desc.digest.indexOf(':'));
    if (!isAlgo(algo)) throw new RegistryError(`blob ${desc.digest}: unsupported digest algorithm`, 'UNSUPPORTED');
    return algo;
  }

  /** Opens the download: foreign URLs first (no credentials), then the registry with auth. */
  private async openBlobDownload(desc: BlobDescriptor, what: string, restart: (() => Promise<void>) | undefined, opts: BlobOptions): Promise<DownloadStream> {
    const algo = this.blobAlgo(desc);
    const common = { ...this.fetchOpts, algo, ...(restart ? { onRestart: restart } : {}), ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) };
    for (const u of desc.urls ?? []) {
      try {
        // A manifest names these hosts, not the user: no credentials of theirs go there.
        return await openDownload(u, { ...common, credentialsFor: null });
      } catch {
        // containers/image falls back to the registry when every foreign URL fails.
      }
    }
    const base = await this.endpoint().catch((err: unknown) => {
      throw this.wrapFetch(what, err);
    });
    const url = `${base}/v2/${this.ref.path}/blobs/${desc.digest}`;
    for (let attempt = 0; ; attempt++) {
      const sent = await this.auth.authorize(this.scope);
      try {
        return await openDownload(url, { ...common, headers: { ...this.fetchOpts.headers, ...(sent ? { Authorization: sent } : {}) } });
      } catch (err) {
        if (err instanceof FetchError && err.status === 401 && attempt === 0 && await this.auth.unauthorized(this.scope, undefined, sent)) continue;
        if (err instanceof FetchError && err.status === 404) throw new RegistryError(`${what}: not found (HTTP 404)`, 'NOT_FOUND', { status: 404, cause: err });
        throw this.wrapFetch(what, err);
      }
    }
  }

  /**
   * Yields the blob's bytes, checking the size as they arrive (an oversized body is cut off at
   * once) and the digest at the end: the last step throws if anything is wrong, so a consumer
   * must not use the bytes before the iteration completed.
   */
  private async *verified(dl: DownloadStream, desc: BlobDescriptor, what: string, counter: { n: number }): AsyncGenerator<Buffer, void, undefined> {
    const size = desc.size;
    if (size !== undefined && dl.total !== undefined && dl.total !== size && dl.resumes === 0) {
      dl.cancel();
      throw new RegistryError(`${what}: size mismatch: the server announces ${dl.total} bytes, expected ${size}`, 'SIZE_MISMATCH');
    }
    try {
      for await (const c of dl) {
        counter.n += c.length;
        if (size !== undefined && counter.n > size) throw new RegistryError(`${what}: size mismatch: more than the expected ${size} bytes`, 'SIZE_MISMATCH');
        yield c;
      }
    } catch (err) {
      throw this.wrapFetch(what, err);
    }
    if (size !== undefined && counter.n !== size) throw new RegistryError(`${what}: size mismatch: expected ${size} bytes, got ${counter.n}`, 'SIZE_MISMATCH');
    const algo = this.blobAlgo(desc);
    const got = `${algo}:${dl.digest().base16}`;
    if (got !== desc.digest) throw new RegistryError(`${what}: digest mismatch: expected ${desc.digest}, got ${got}`, 'DIGEST_MISMATCH');
  }

  /**
   * The last `n` bytes of a blob, by a range request (e.g. a gzip trailer, which gives the
   * uncompressed size before the download). Undefined when the server will not serve a range
   * or anything else goes wrong: this is only ever a hint, and the full download that follows
   * reports real errors.
   */
  async blobTail(desc: BlobDescriptor, n: number): Promise<Buffer | undefined> {
    if (desc.size === undefined || desc.size < n || desc.urls?.length) return undefined;
    try {
      const base = await this.endpoint();
      const { res } = await this.authedGet(`${base}/v2/${this.ref.path}/blobs/${desc.digest}`, { Range: `bytes=${desc.size - n}-` });
      const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers['content-range'] ?? '');
      if (res.status !== 206 || !range || Number(range[1]) !== desc.size - n || Number(range[3]) !== desc.size) {
        res.body.destroy();
        return undefined;
      }
      const tail = await readSmall(res.body, n + 1);
      return tail.length === n ? tail : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * A stream of the blob's bytes that errors (instead of ending) if the size or digest is wrong.
   * Write it somewhere temporary and use it only after 'end'.
   */
  async openBlob(desc: BlobDescriptor, opts: BlobOptions = {}): Promise<Readable> {
    const what = `blob ${desc.digest} of ${this.ref.name}`;
    const dl = await this.openBlobDownload(desc, what, undefined, opts);
    return Readable.from(this.verified(dl, desc, what, { n: 0 }), { objectMode: false });
  }

  /**
   * Downloads a blob into `destPath`, verified: the bytes go to a temporary sibling that is
   * renamed into place only when size and digest match, and removed on any failure.
   */
  async fetchBlob(digest: string, size: number | undefined, destPath: string, opts: BlobOptions & { urls?: readonly string[] } = {}): Promise<{ digest: string; size: number }> {
    const desc: BlobDescriptor = { digest, size, urls: opts.urls };
    const what = `blob ${digest} of ${this.ref.name}`;
    const tmp = `${destPath}.${process.pid}-${randomBytes(6).toString('hex')}.part`;
    const fh = await open(tmp, 'wx', 0o644);
    let closed = false;
    try {
      let pos = 0;
      const counter = { n: 0 };
      const restart = async (): Promise<void> => {
        await fh.truncate(0);
        pos = 0;
        counter.n = 0;
      };
      for (let attempt = 0; ; attempt++) {
        const dl = await this.openBlobDownload(desc, what, restart, opts);
        try {
          for await (const chunk of this.verified(dl, desc, what, counter)) {
            await writeFullyAt(fh, chunk, pos);
            pos += chunk.length;
          }
          break;
        } catch (err) {
          // A token that expired during a long download: start again with a fresh one, once.
          const cause = err instanceof RegistryError ? err.cause : undefined;
          if (attempt === 0 && cause instanceof FetchError && cause.status === 401 && await this.auth.unauthorized(this.scope, undefined, 'expired')) {
            await restart();
            continue;
          }
          throw err;
        }
      }
      await fh.sync();
      await fh.close();
      closed = true;
      await rename(tmp, destPath);
      return { digest, size: pos };
    } catch (err) {
      if (!closed) await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
  }
}
