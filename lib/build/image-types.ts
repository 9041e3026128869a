/** The image writer's interface (notes/BUILD-API.md, "lib/build/image-writer"). */

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export interface RootSource {
  /** Real directory whose *contents* are merged into the layer root. */
  dir: string;
  /** Names the source in errors, e.g. "copyToRoot[1] (/nix/store/…-hello)" or "upper dir". */
  label: string;
  /** The logical store path when `dir` is a store path's real location. */
  storePath?: string;
}

export interface ClosurePath {
  storePath: string;
  realPath: string;
}

export interface LayerInput {
  /** Merged in order like nixpkgs' `rsync -a`: later entries win; a file-vs-directory conflict is an error naming both labels. */
  roots: RootSource[];
  /** rsync -K: a directory symlink from an earlier root stays a symlink and a later root's directory there goes through it. */
  keepContentsDirlinks: boolean;
  /** Owner of the root's entries; 'keep' = the numeric owners on disk (a runAsRoot upper dir). */
  owner: { uid: number; gid: number } | 'keep';
  /** The full closure, placed at <storeDir>/<name>; paths a base layer already holds are left out. */
  closure: ClosurePath[];
  /** Store paths whose files, byte-identical at the same relative path under the root, are written once (a tar hard link). */
  dedupeAgainst?: ClosurePath[];
  sourceDateEpoch: number;
}

export interface ImageInput {
  /** Real path of a docker-archive (uncompressed, or gzip/zstd as our own builds write it). */
  base?: { archive: string };
  layer: LayerInput;
  /** The logical store dir, '/nix/store'. */
  storeDir: string;
  name: string;
  tag: string;
  /** buildImage's `config` (Cmd, Env, …); the base's Env is prepended. */
  config: Json | null;
  architecture: string;
  /** Already resolved ("now" → an ISO time, by the caller). */
  created: string;
  compressor: 'none' | 'gz' | 'zstd';
  format: 'docker-archive' | 'oci';
  /** Output file (docker-archive) or directory (oci); must not exist yet. */
  out: string;
}

export interface ImageResult {
  layerDiffId: string;
  configDigest: string;
  /** Store paths put in the layer. */
  added: string[];
  /** Store paths left out because a base layer holds them. */
  skipped: string[];
  /** Bytes of store path files added to the layer. */
  closureSize: number;
}

export interface WriteImageOptions {
  signal?: AbortSignal;
  /** Called with the bytes of output written so far (the new layer, then the image). */
  progress?: (bytes: number) => void;
}
