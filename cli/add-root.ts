// `--add-root NAME` on the fetching commands: the result is protected from `store gc` at once,
// as `nix-build -o NAME` does; a root of that name is repointed (and the old target said).
import type { LocalStore } from '../lib/store/index.js';
import type { GlobalArgs } from './context.js';
import { UserError } from './errors.js';

export const ADD_ROOT_OPTION = {
  type: 'string',
  describe: "protect the result from 'store gc' with a GC root of this name (like nix-build -o; see 'store roots')",
} as const;

export function addRootIfAsked(a: GlobalArgs & { addRoot?: string }, store: LocalStore, storePath: string): void {
  if (a.addRoot === undefined) return;
  let r: { link: string; previous?: string };
  try {
    r = store.addRoot(storePath, a.addRoot, { force: true });
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  if (!a.quiet) process.stderr.write(`GC root '${a.addRoot}' -> ${storePath}${r.previous ? ` (it pointed to ${r.previous})` : ''}\n`);
}
