/** lib/build: dockerTools.buildImage on the store (notes/BUILD-API.md). */
export { writeImage } from './image-writer.js';
export { baseImageInfo, openBaseArchive } from './base-image.js';
export type { BaseArchive, BaseLayer } from './base-image.js';
export { shadowSetup } from './shadow-setup.js';
export type { ShadowSetupVersion } from './shadow-setup.js';
export { RootConflictError } from './merge.js';
export type { ClosurePath, ImageInput, ImageResult, Json, LayerInput, RootSource, WriteImageOptions } from './image-types.js';
export { BuildSpecError, nearestKey } from './spec-errors.js';
export { DEFAULT_CREATED, checkBuildSpec, hostArchitecture, parseBuildSpecText } from './spec.js';
export type { BuildSpec, Compressor, CopyToRootEntry, FromImage, ImagePin, ParsedSpec, SandboxChoice } from './spec.js';
export { storePathsIn } from './store-refs.js';
export { materialiseRoots } from './materialise.js';
export type { MaterialiseSource } from './materialise.js';
export { extraCommandsEnv, runExtraCommands } from './extra-commands.js';
export { inspectImage } from './inspect-image.js';
export type { InspectedImage, InspectedLayer } from './inspect-image.js';
