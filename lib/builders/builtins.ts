import type { Builder, Substituter } from '../recipe/index.js';
import { hashedMirrorSubstituter } from './hashed-mirrors.js';

/** The builder names recipes use (kept apart from the builders, so naming one loads nothing). */
export const FETCH_URL_BUILDER = 'builtin:fetch-url';
export const FETCH_IMAGE_BUILDER = 'builtin:fetch-image';
export const FETCH_IMAGE_V1_BUILDER = 'builtin:fetch-image-v1';
export const V1_TARBALL_BUILDER = 'builtin:v1-tarball';
export const BUILD_IMAGE_BUILDER = 'builtin:build-image';

/** A builder whose code is loaded when it first runs: a URL fetch need not load the image puller. */
const onDemand = (load: () => Promise<Builder>): Builder => async (ctx) => (await load())(ctx);

/** Every builtin builder, by the name recipes use. */
export const BUILTIN_BUILDERS: Readonly<Record<string, Builder>> = {
  [FETCH_URL_BUILDER]: onDemand(async () => (await import('./fetch-url.js')).fetchUrlBuilder),
  [FETCH_IMAGE_BUILDER]: onDemand(async () => (await import('./fetch-image.js')).fetchImageBuilder),
  [FETCH_IMAGE_V1_BUILDER]: onDemand(async () => (await import('./fetch-image-v1.js')).fetchImageV1Builder),
  [V1_TARBALL_BUILDER]: onDemand(async () => (await import('./fetch-image-v1.js')).v1TarballBuilder),
  [BUILD_IMAGE_BUILDER]: onDemand(async () => (await import('./build-image.js')).buildImageBuilder),
};

export interface SubstituterConfig {
  hashedMirrors?: readonly string[];
}

/** The substituters realise() asks, in order, before running a builder. */
export function defaultSubstituters(cfg: SubstituterConfig = {}): Substituter[] {
  return [hashedMirrorSubstituter(cfg.hashedMirrors ?? [])];
}
