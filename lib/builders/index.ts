import type { Builder, Substituter } from '../recipe/index.js';
import { FETCH_IMAGE_BUILDER, fetchImageBuilder } from './fetch-image.js';
import { FETCH_IMAGE_V1_BUILDER, V1_TARBALL_BUILDER, fetchImageV1Builder, v1TarballBuilder } from './fetch-image-v1.js';
import { FETCH_URL_BUILDER, fetchUrlBuilder } from './fetch-url.js';
import { hashedMirrorSubstituter } from './hashed-mirrors.js';

export { FETCH_URL_BUILDER, defaultUrlName, fetchUrlBuilder, fetchUrlRecipe, outputModeOf } from './fetch-url.js';
export type { FetchUrlSpec } from './fetch-url.js';
export { hashedMirrorSubstituter } from './hashed-mirrors.js';
export { FETCH_IMAGE_BUILDER, IMAGE_IMPURE_ENV_VARS, fetchImageBuilder, pullRecipe } from './fetch-image.js';
export type { ImageFormat, PullSpec } from './fetch-image.js';
export { imageNames, pullImageStoreName } from './image-name.js';
export { FETCH_IMAGE_V1_BUILDER, V1_TARBALL_BUILDER, pullV1Recipe, v1TarballRecipe } from './fetch-image-v1.js';
export type { PullV1Spec } from './fetch-image-v1.js';

/** Every builtin builder, by the name recipes use. */
export const BUILTIN_BUILDERS: Readonly<Record<string, Builder>> = {
  [FETCH_URL_BUILDER]: fetchUrlBuilder,
  [FETCH_IMAGE_BUILDER]: fetchImageBuilder,
  [FETCH_IMAGE_V1_BUILDER]: fetchImageV1Builder,
  [V1_TARBALL_BUILDER]: v1TarballBuilder,
};

export interface SubstituterConfig {
  hashedMirrors?: readonly string[];
}

/** The substituters realise() asks, in order, before running a builder. */
export function defaultSubstituters(cfg: SubstituterConfig = {}): Substituter[] {
  return [hashedMirrorSubstituter(cfg.hashedMirrors ?? [])];
}
export { resolveImageRef } from './resolve-ref.js';
