import { mkdir, open, rm, symlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { parseNar } from './reader.js';

const SLASH = Buffer.from('/');

/**
 * Restores a NAR into `dest`, which must not exist yet. Every entry is created fresh (exclusive
 * create) inside directories this call made, and names were validated by the parser, so nothing
 * can be written outside `dest` — not even through a symlink in the archive. On any error the
 * partial tree is removed.
 */
export async function restoreNar(input: AsyncIterable<Uint8Array>, dest: string): Promise<{ size: number }> {
  const root = Buffer.from(dest);
  const at = (path: readonly Buffer[]): Buffer => (path.length ? Buffer.concat([root, ...path.flatMap((n) => [SLASH, n])]) : root);
  let created = false;
  try {
    return await parseNar(input, {
      async directory(path) {
        await mkdir(at(path), { mode: 0o755 });
        created = true;
      },
      async file(path, executable, _size, contents) {
        // Opened before anything can fail: a write stream opens in the background, and an open
        // that lands after the clean-up below would leave a file behind.
        const fh = await open(at(path), 'wx', executable ? 0o755 : 0o644);
        created = true;
        await pipeline(contents, fh.createWriteStream());
      },
      async symlink(path, target) {
        await symlink(target, at(path));
        created = true;
      },
    });
  } catch (e) {
    if (created) await rm(dest, { recursive: true, force: true });
    throw e;
  }
}
