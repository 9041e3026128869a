export { BLOCK, TarWriter, encodeTarHeader, paxRecord, splitUstarPath, tarPadding, writeWithBackpressure } from './tar.js';
export type { TarContent, TarEntryType, TarHeader } from './tar.js';
export { tarMembers } from './tar-index.js';
export type { TarMember } from './tar-index.js';
export {
  GoRawJson, goCompactJson, goJsonString, goMarshal, parseJsonTree, stableJson, topLevelRawJson,
} from './canonical-json.js';
export type { GoJsonValue, JsonTree } from './canonical-json.js';
export {
  ZstdDecompressStream, decompressLayer, layerFromFile, sniffCompression, uncompressLayerToFile,
} from './layer.js';
export type { ArchiveLayer, LayerCompression, UncompressedLayer } from './layer.js';
export { LayerDigestMismatchError, archiveManifest, archiveRepositories, dockerArchiveLayout, legacyLayers, writeDockerArchive } from './docker-archive.js';
export type { ArchiveLayout, ArchivePiece, DockerArchiveInput, LegacyLayer, RepoTag } from './docker-archive.js';
export { OCI_LAYOUT_FILE, REF_NAME_ANNOTATION, ociIndexJson, writeOciLayout } from './oci-layout.js';
export type { OciBlob, OciLayoutInput } from './oci-layout.js';
export {
  DOCKER_LIST, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, dockerConfigToOci, goRfc3339Nano, toOciImage, toOciIndex,
} from './oci-convert.js';
export type { ConvertedImage } from './oci-convert.js';
export { BlockCompressStream } from './block-compress.js';
