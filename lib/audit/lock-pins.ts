import { fetchUrlRecipe, outputModeOf, pullRecipe } from '../builders/index.js';
import { request } from '../fetch/index.js';
import { prefetch, type RealiseOptions } from '../recipe/index.js';
import { parseReference } from '../registry/index.js';
import type { LocalStore } from '../store/index.js';
import type { ImagePin, UrlPin } from './lock-file.js';

export interface ImageLockOptions {
  tlsVerify: boolean;
  os?: string;
  arch?: string;
  variant?: string;
  realise: RealiseOptions;
}

/**
 * Pulls `ref` into the store (as `fetch-image REF` without a pin does) and returns its lock
 * entry; `fromTag` is the tag that was resolved, so an audit can later see it move.
 */
export async function lockImage(store: LocalStore, ref: string, opts: ImageLockOptions): Promise<ImagePin> {
  const reference = parseReference(ref);
  const recipe = pullRecipe({
    reference: ref, tlsVerify: opts.tlsVerify,
    ...(opts.os ? { os: opts.os } : {}), ...(opts.arch ? { arch: opts.arch } : {}), ...(opts.variant ? { variant: opts.variant } : {}),
  });
  const r = await prefetch(store, recipe, 'flat', opts.realise);
  const info = r.buildInfo ?? {};
  const args = r.recipe.args as { imageName: string; finalImageName: string; finalImageTag: string };
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const imageDigest = str(info.imageDigest);
  if (!imageDigest) throw new Error(`${ref}: the pull did not report the digest it resolved`);
  const indexDigest = str(info.indexDigest);
  const variant = str(info.variant);
  return {
    imageName: args.imageName,
    imageDigest,
    ...(indexDigest ? { indexDigest } : {}),
    ...(reference.digest === undefined ? { fromTag: reference.tag ?? 'latest' } : {}),
    hash: r.hash.sri,
    finalImageName: args.finalImageName,
    finalImageTag: args.finalImageTag,
    os: str(info.os) ?? opts.os ?? 'linux',
    arch: str(info.arch) ?? opts.arch ?? '',
    ...(variant ? { variant } : {}),
    ...(opts.tlsVerify ? {} : { tlsVerify: false }),
    storePath: r.path,
  };
}

/** Fetches `url` into the store and returns its lock entry, with the server's ETag, Last-Modified and size as drift hints. */
export async function lockUrl(store: LocalStore, url: string, opts: { unpack: boolean; realise: RealiseOptions }): Promise<UrlPin> {
  const spec = { url, unpack: opts.unpack };
  const r = await prefetch(store, fetchUrlRecipe(spec), outputModeOf(spec), opts.realise);
  const pin: UrlPin = { url, hash: r.hash.sri, unpack: opts.unpack, name: r.recipe.name, storePath: r.path };
  if (url.startsWith('http:') || url.startsWith('https:')) {
    try {
      const head = await request(url, { method: 'HEAD' }, { env: opts.realise.callerEnv ?? process.env });
      head.body.resume();
      if (head.status < 300) {
        if (head.headers.etag) pin.etag = head.headers.etag;
        if (head.headers['last-modified']) pin.lastModified = head.headers['last-modified'];
        const size = Number(head.headers['content-length']);
        if (head.headers['content-length'] !== undefined && Number.isSafeInteger(size)) pin.size = size;
      }
    } catch {
      // The hints are optional: a server that refuses HEAD still gets a pin (drift says n/a).
    }
  }
  return pin;
}
