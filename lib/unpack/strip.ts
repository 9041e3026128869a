import { lstat, readdir } from 'node:fs/promises';
import { showName } from '../nar/index.js';
import { TopLevelError } from './errors.js';
import { under } from './names.js';

export interface Output {
  /** The directory that becomes the output (bytes: its name need not be UTF-8). */
  dir: Buffer;
  /** That directory's path below the unpack root, as components (empty: the root itself). */
  parts: Buffer[];
}

/**
 * Picks the output the way nixpkgs' fetchzip does. With stripping, the top level must hold
 * exactly one entry (fetchzip: "zip file must contain a single file or directory", unless
 * stripRoot = false): a directory becomes the output itself, anything else stays wrapped in
 * the output directory. Without stripping, the whole unpacked tree is the output.
 */
export async function chooseOutput(root: string, strip: boolean): Promise<Output> {
  const rootBuf = Buffer.from(root);
  if (!strip) return { dir: rootBuf, parts: [] };
  const names = await readdir(rootBuf, { encoding: 'buffer' });
  if (names.length !== 1) {
    const listed = names.slice(0, 5).map((n) => `'${showName(n)}'`).join(', ') + (names.length > 5 ? ', ...' : '');
    throw new TopLevelError(
      `the archive must contain a single top-level file or directory to strip, but it has ${names.length}` +
        `${names.length > 0 ? ` (${listed})` : ''}; keep the whole tree with --no-strip-root (fetchzip: stripRoot = false)`,
    );
  }
  const only = names[0] as Buffer;
  const dir = under(rootBuf, [only]);
  if ((await lstat(dir)).isDirectory()) return { dir, parts: [only] };
  return { dir: rootBuf, parts: [] };
}
