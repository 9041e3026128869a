/** lib/registry: image references, the v2/OCI registry client (auth, manifests, platforms, blobs), credentials. */
export {
  DEFAULT_DOMAIN, DEFAULT_TAG, DOCKER_HUB_API_HOST, DOCKER_HUB_CREDENTIALS_KEY, ReferenceError,
  formatReference, parseReference, validateDigest, withDigest,
} from './reference.js';
export type { ImageReference } from './reference.js';
export {
  availablePlatforms, formatPlatform, hostArchitecture, isAttestation, normalizePlatform, parsePlatform,
  platformCandidates, platformNamed, platformOptions, platformSatisfies, selectPlatform, variantNamed, wantedPlatform,
} from './platform.js';
export type { IndexEntry, Platform, PlatformWanted } from './platform.js';
export {
  MANIFEST_ACCEPT, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, MEDIA_TYPES, Schema1Error, digestOf, isImageManifestMediaType,
  isIndexMediaType, parseManifest, verifyBytes,
} from './manifest.js';
export type { Descriptor, ImageIndex, ImageManifest, Manifest } from './manifest.js';
export { authFilePaths, findCredentials, normalizeAuthKey, parseCreds, runCredentialHelper } from './credentials.js';
export type { CredentialOptions, Credentials } from './credentials.js';
export { Authenticator, parseTokenAnswer, parseWwwAuthenticate } from './auth.js';
export type { AuthenticatorOptions, Challenge } from './auth.js';
export { RegistryError, describeErrorBody } from './errors.js';
export type { RegistryErrorCode } from './errors.js';
export { RegistryClient } from './client.js';
export type { BlobDescriptor, BlobOptions, FetchedManifest, RegistryClientOptions, ResolvedImage } from './client.js';
export { limitConcurrency } from './limit.js';
export type { Limiter } from './limit.js';
export * from './v1/index.js';
export { onceUnlessFailed } from './memo.js';
export { findEndpoint } from './ping.js';
export type { Endpoint } from './ping.js';
