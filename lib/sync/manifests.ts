/**
 * Manifests in the destination: what a tag or digest currently names (HEAD), pushing exact
 * bytes (PUT with the source's media type, so the registry stores the same digest), and the
 * read-back that proves it.
 */
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, RegistryError, digestOf } from '../registry/index.js';
import { readBody, repoScope, type RegistryHost } from './host.js';

function accept(mediaType: string | undefined): string {
  return mediaType === undefined || MANIFEST_ACCEPT.includes(mediaType) ? MANIFEST_ACCEPT : `${mediaType}, ${MANIFEST_ACCEPT}`;
}

export class ManifestPusher {
  constructor(private readonly host: RegistryHost, private readonly actions: 'pull' | 'pull,push') {}

  private scope(path: string): string {
    return repoScope(path, this.actions);
  }

  private describe(path: string, reference: string): string {
    return `${this.host.domain}/${path}${reference.includes(':') ? '@' : ':'}${reference}`;
  }

  /** The digest `reference` (tag or digest) names in `path`, or undefined when absent. */
  async current(path: string, reference: string, mediaType?: string): Promise<string | undefined> {
    const what = `manifest ${this.describe(path, reference)}`;
    try {
      const url = await this.host.url(path, `manifests/${reference}`);
      const res = await this.host.send('HEAD', url, { headers: { Accept: accept(mediaType) } }, this.scope(path));
      await readBody(res.body);
      if (res.status === 404) return undefined;
      if (res.status !== 200) throw await this.host.statusError(`HEAD ${what}`, res.status, Buffer.alloc(0));
      const said = res.headers['docker-content-digest'];
      if (said !== undefined && said !== '') return said;
      // No digest header (allowed by the spec): hash what a GET answers.
      return (await this.fetch(path, reference, mediaType)).digest;
    } catch (err) {
      throw this.host.wrap(`HEAD ${what}`, err);
    }
  }

  /** GETs the manifest; its digest is computed from the bytes, never taken from a header. */
  async fetch(path: string, reference: string, mediaType?: string): Promise<{ digest: string; bytes: Buffer; contentType: string | undefined }> {
    const what = `manifest ${this.describe(path, reference)}`;
    try {
      const url = await this.host.url(path, `manifests/${reference}`);
      const res = await this.host.send('GET', url, { headers: { Accept: accept(mediaType) } }, this.scope(path));
      const bytes = await readBody(res.body, MAX_MANIFEST_BYTES + 1);
      if (res.status !== 200) throw await this.host.statusError(`GET ${what}`, res.status, bytes);
      if (bytes.length > MAX_MANIFEST_BYTES) throw new RegistryError(`GET ${what}: larger than the ${MAX_MANIFEST_BYTES}-byte limit for manifests`, 'TOO_LARGE');
      return { digest: digestOf(bytes), bytes, contentType: res.headers['content-type'] };
    } catch (err) {
      throw this.host.wrap(`GET ${what}`, err);
    }
  }

  /** PUTs the exact bytes as `reference`; the registry must report `digest` back. */
  async put(path: string, reference: string, m: { digest: string; mediaType: string; bytes: Buffer }): Promise<void> {
    const what = `push of manifest ${m.digest} as ${this.describe(path, reference)}`;
    try {
      const url = await this.host.url(path, `manifests/${reference}`);
      const res = await this.host.send('PUT', url, { headers: { 'Content-Type': m.mediaType }, body: m.bytes }, this.scope(path));
      const body = await readBody(res.body);
      if (res.status !== 201 && res.status !== 200 && res.status !== 204) throw await this.host.statusError(what, res.status, body);
      const stored = res.headers['docker-content-digest'];
      if (stored !== undefined && stored !== m.digest) {
        throw new RegistryError(`${what}: the registry stored it as ${stored}, not byte for byte`, 'DIGEST_MISMATCH');
      }
    } catch (err) {
      throw this.host.wrap(what, err);
    }
  }
}
