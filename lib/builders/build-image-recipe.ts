// The build-image recipe: a build spec with every input resolved to a store path. Input-addressed,
// so its output path is the hash of this text (inputs' paths included): an unchanged spec on
// unchanged inputs is one lookup.
import type { BuildSpec } from '../build/index.js';
import { makeRecipe, type Json, type Recipe } from '../recipe/index.js';
import { sanitizeStoreName } from '../store/index.js';
import { BUILD_IMAGE_BUILDER } from './builtins.js';

export type BuildFormat = 'docker-archive' | 'oci';

/** nixpkgs stdenv's SOURCE_DATE_EPOCH (1980-01-01): the layer's mtimes. */
export const DEFAULT_SOURCE_DATE_EPOCH = 315532800;

/** The variable that carries --sandbox to the builder: the choice is not in the recipe, so both sandboxes give one path. */
export const SANDBOX_ENV_VAR = 'FETCH_IMAGE_SANDBOX';
/** --timeout (seconds) and --keep-failed for the root stage, carried the same way. */
export const ROOT_TIMEOUT_ENV_VAR = 'FETCH_IMAGE_ROOT_TIMEOUT';
export const KEEP_FAILED_ENV_VAR = 'FETCH_IMAGE_KEEP_FAILED';
/** --timeout's default: an hour, as a TCG VM is slow; a hung script is still stopped. */
export const DEFAULT_ROOT_TIMEOUT_S = 3600;

/** The recipe's arguments, as the builder reads them back. */
export interface BuildImageArgs {
  [key: string]: Json | undefined;
  name: string;
  tag: string | null;
  fromImage: string | null;
  /** Store paths, in merge order. */
  copyToRoot: string[];
  keepContentsDirlinks: boolean;
  config: { [key: string]: Json } | null;
  extraCommands: string;
  uid: number;
  gid: number;
  architecture: string;
  created: string;
  compressor: BuildSpec['compressor'];
  format: BuildFormat;
  sourceDateEpoch: number;
  /** Only when the spec has runAsRoot (the root stage's arguments). */
  runAsRoot?: string;
  diskSize?: number;
  buildVMMemorySize?: number;
  network?: boolean;
  shadow?: string | null;
  shadowSetupVersion?: string;
  /** Present when the output cannot be reproduced bit for bit (`created: "now"`, network). */
  impure?: string[];
}

export interface ResolvedBuild {
  spec: BuildSpec;
  fromImage: string | null;
  copyToRoot: string[];
  /** Store paths named in the config and scripts: part of the closure. */
  textReferences: string[];
  /** Recipes making some of the inputs (pulls, URL fetches, base builds), realised first. */
  inputRecipes: Recipe[];
  format: BuildFormat;
  sourceDateEpoch: number;
}

/** `docker-image-<name>.tar.gz` (`.tar`, `.tar.zst`), as nixpkgs names buildImage's output; OCI layouts drop the suffix. */
export function buildImageStoreName(name: string, compressor: BuildSpec['compressor'], format: BuildFormat): string {
  const base = sanitizeStoreName(`docker-image-${name.slice(name.lastIndexOf('/') + 1)}`);
  if (format === 'oci') return base;
  return base + { none: '.tar', gz: '.tar.gz', zstd: '.tar.zst' }[compressor];
}

export function buildImageRecipe(r: ResolvedBuild): Recipe {
  const s = r.spec;
  const args: BuildImageArgs = {
    name: s.name, tag: s.tag, fromImage: r.fromImage, copyToRoot: r.copyToRoot, keepContentsDirlinks: s.keepContentsDirlinks,
    config: s.config, extraCommands: s.extraCommands, uid: s.uid, gid: s.gid, architecture: s.architecture, created: s.created,
    compressor: s.compressor, format: r.format, sourceDateEpoch: r.sourceDateEpoch,
  };
  const impure = [...(s.created === 'now' ? ['created'] : []), ...(s.network ? ['network'] : [])];
  if (s.runAsRoot !== null) {
    Object.assign(args, {
      runAsRoot: s.runAsRoot, diskSize: s.diskSize, buildVMMemorySize: s.buildVMMemorySize, network: s.network,
      shadow: s.shadow, shadowSetupVersion: s.shadowSetupVersion,
    });
  }
  if (impure.length) args.impure = impure;
  const inputs = [...(r.fromImage ? [r.fromImage] : []), ...r.copyToRoot, ...r.textReferences, ...(s.shadow ? [s.shadow] : [])];
  return makeRecipe({
    name: buildImageStoreName(s.name, s.compressor, r.format),
    builder: BUILD_IMAGE_BUILDER,
    args: args as { [key: string]: Json },
    ...(s.runAsRoot !== null ? { impureEnvVars: [SANDBOX_ENV_VAR, ROOT_TIMEOUT_ENV_VAR, KEEP_FAILED_ENV_VAR] } : {}),
    inputs,
    inputRecipes: r.inputRecipes,
    preferLocalBuild: true,
  });
}
