import { storedRecipe } from '../recipe/index.js';
import { parseReference } from '../registry/index.js';
import type { LocalStore } from '../store/index.js';
import { FETCH_IMAGE_BUILDER, FETCH_IMAGE_V1_BUILDER } from './builtins.js';

/**
 * The store paths of images already pulled that an image reference names: `name[:tag]` matches
 * pulls of that name and tag, `name@sha256:…` pulls of that platform manifest (the pin). Read
 * from the recipes recorded as derivers, so nothing is fetched.
 */
export async function resolveImageRef(ref: string, store: LocalStore): Promise<string[]> {
  const want = parseReference(ref);
  const found: string[] = [];
  for (const info of store.list()) {
    const r = storedRecipe(store, info.deriver);
    if (!r) continue;
    const a = r.args as Record<string, unknown>;
    if (r.builder === FETCH_IMAGE_BUILDER && typeof a.imageReference === 'string') {
      const got = parseReference(a.imageReference);
      if (got.name !== want.name) continue;
      const digestMatch = want.digest !== undefined && (a.imageDigest === want.digest || got.digest === want.digest);
      const tagMatch = want.digest === undefined && (a.finalImageTag === (want.tag ?? 'latest') || got.tag === (want.tag ?? 'latest'));
      if (digestMatch || tagMatch) found.push(info.path);
    } else if (r.builder === FETCH_IMAGE_V1_BUILDER) {
      const name = String(a.imageName);
      if ((name === ref.split(':')[0] || parseReference(name).name === want.name) && String(a.imageTag) === (want.tag ?? 'latest')) found.push(info.path);
    }
  }
  if (!found.length) throw new Error(`no pulled image in the store matches '${ref}': pull it first, or give its /nix/store path`);
  return found;
}
