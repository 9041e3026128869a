import { resolve } from 'node:path';
import type { LocalStore } from '../store/index.js';

/**
 * Turns an argument that is not a store path (an image reference like `ubuntu:latest`, a pin)
 * into the store paths it stands for. The image module supplies one; without it such
 * arguments are refused.
 */
export type RefResolver = (ref: string, store: LocalStore) => Promise<string[]>;

/** Whether an argument names a store path: logical `/nix/store/…`, a real path, or a base name. */
function looksLikePath(arg: string): boolean {
  return arg.startsWith('/') || arg.startsWith('.') || /^[0-9a-df-np-sv-z]{32}-/.test(arg);
}

/**
 * The valid store paths `args` name, in order and without duplicates. Store paths are taken as
 * they are (and must be valid); anything else goes to `resolveRef`.
 */
export async function resolvePathArgs(store: LocalStore, args: readonly string[], resolveRef?: RefResolver): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args) {
    if (looksLikePath(arg)) {
      const p = store.toStorePath(arg.startsWith('.') ? resolve(arg) : arg);
      store.requireInfo(p);
      out.push(p);
    } else if (resolveRef) {
      out.push(...(await resolveRef(arg, store)));
    } else {
      throw new Error(`'${arg}' is not a store path (and image references cannot be resolved here yet): give /nix/store/… paths`);
    }
  }
  return [...new Set(out)];
}
