/** lib/build: dockerTools.buildImage on the store (notes/BUILD-API.md). */
export { writeImage } from './image-writer.js';
export { baseImageInfo } from './base-image.js';
export { RootConflictError } from './merge.js';
export type { ClosurePath, ImageInput, ImageResult, Json, LayerInput, RootSource, WriteImageOptions } from './image-types.js';
