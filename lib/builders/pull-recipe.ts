// The pull recipe alone, without the puller: planning a build on a pinned base needs its output
// path, not the registry client.
import type { Hash } from '../hash/index.js';
import { FETCHER_IMPURE_ENV_VARS, makeRecipe, type Recipe } from '../recipe/index.js';
import { checkStoreName } from '../store/index.js';
import { FETCH_IMAGE_BUILDER } from './builtins.js';
import { imageNames, pullImageStoreName } from './image-name.js';

/** Variables a pull may read from the caller: proxies and curl flags, plus registry credentials. */
export const IMAGE_IMPURE_ENV_VARS = [
  ...FETCHER_IMPURE_ENV_VARS, 'FETCH_IMAGE_CREDS', 'FETCH_IMAGE_JOBS', 'DOCKER_CONFIG', 'REGISTRY_AUTH_FILE', 'XDG_RUNTIME_DIR', 'XDG_CONFIG_HOME', 'HOME', 'PATH',
];

export type ImageFormat = 'docker-archive' | 'oci';

export interface PullSpec {
  /** As the user wrote it: `ubuntu:latest`, `host:5000/x/y@sha256:…`. */
  reference: string;
  finalImageName?: string;
  finalImageTag?: string;
  os?: string;
  arch?: string;
  variant?: string;
  format?: ImageFormat;
  name?: string;
  tlsVerify?: boolean;
  hash?: Hash;
}

export interface PullArgs {
  [key: string]: string | boolean | null;
  imageName: string;
  imageReference: string;
  imageDigest: string | null;
  finalImageName: string;
  finalImageTag: string;
  os: string | null;
  arch: string | null;
  variant: string | null;
  format: ImageFormat;
  tlsVerify: boolean;
}

/** The recipe nixpkgs' pullImage would be, with our builtin builder instead of skopeo. */
export function pullRecipe(spec: PullSpec): Recipe {
  const names = imageNames(spec.reference, spec.finalImageName, spec.finalImageTag);
  const format = spec.format ?? 'docker-archive';
  const name = checkStoreName(spec.name ?? pullImageStoreName(names.finalImageName, names.finalImageTag, format));
  const args: PullArgs = {
    imageName: names.imageName,
    imageReference: spec.reference,
    imageDigest: names.reference.digest ?? null,
    finalImageName: names.finalImageName,
    finalImageTag: names.finalImageTag,
    os: spec.os ?? null,
    arch: spec.arch ?? null,
    variant: spec.variant ?? null,
    format,
    tlsVerify: spec.tlsVerify ?? true,
  };
  const base = { name, builder: FETCH_IMAGE_BUILDER, args, impureEnvVars: IMAGE_IMPURE_ENV_VARS, preferLocalBuild: true };
  if (!spec.hash) return makeRecipe(base);
  return makeRecipe({ ...base, outputHash: { algo: spec.hash.algo, mode: format === 'docker-archive' ? 'flat' : 'recursive', hash: spec.hash.sri } });
}

