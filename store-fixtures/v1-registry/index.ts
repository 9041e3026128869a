/** Fixture: a Docker registry API v1 (index, registry, storage) serving images built from specs. */
export { startV1Registry } from './server.js';
export type { LoggedRequest, Role, V1Registry, V1RegistryOptions } from './server.js';
export { buildV1Image, makeTar, noise } from './image.js';
export type { V1FixtureImage, V1FixtureLayer, V1ImageSpec, V1LayerSpec } from './image.js';
export { FIXED_STYLE, Num, num, randomStyle, rng, shuffleDefaults, writeJson } from './json-text.js';
export type { FJson, FObject, Rng, TextStyle } from './json-text.js';
