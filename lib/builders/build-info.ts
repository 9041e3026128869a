// What a build reported (diff_id, config digest, closure split), kept beside the store's metadata
// so that a later run of the same spec, which does no work, can print the same --json.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Json } from '../recipe/index.js';
import { parseStorePath, writeFileAtomic, type LocalStore } from '../store/index.js';

export interface BuildInfo {
  [key: string]: Json;
  imageName: string;
  imageTag: string;
  layerDiffId: string;
  configDigest: string;
  /** Store paths put into the new layer. */
  added: string[];
  /** Closure paths left out because a base layer has them. */
  skipped: string[];
  /** Bytes of store content added. */
  closureSize: number;
}

/** Said when a spec has runAsRoot and this build of fetch-image has no root stage. */
export const RUN_AS_ROOT_UNAVAILABLE = 'runAsRoot needs the root-stage sandbox (lib/sandbox), which this build of fetch-image does not include; remove runAsRoot or use a build that has it';

function infoFile(store: LocalStore, storePath: string): string {
  return join(store.root, 'nix', 'var', 'fetch-image', 'build-info', `${parseStorePath(storePath, store.storeDir).hashPart}.json`);
}

export function writeBuildInfo(store: LocalStore, storePath: string, info: BuildInfo): void {
  const file = infoFile(store, storePath);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileAtomic(file, JSON.stringify(info) + '\n');
}

/** The recorded report of a build, if this store made the path (a substituted one has none). */
export function readBuildInfo(store: LocalStore, storePath: string): BuildInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(infoFile(store, storePath), 'utf8')) as BuildInfo;
    return typeof info.layerDiffId === 'string' ? info : undefined;
  } catch {
    return undefined;
  }
}
