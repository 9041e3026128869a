export { FIXED_MTIME, compressFile, writeLayerTar } from './layer.js';
export type { Compression, EntrySpec } from './layer.js';
export { MEDIA, makeImage, makeIndex } from './image.js';
export type { BuiltImage, BuiltLayer, BuiltLayout, ImageSpec, IndexSpec, LayerSpec, MediaTypes, Platform } from './image.js';
export { pushImage } from './push.js';
export type { PushOptions } from './push.js';
