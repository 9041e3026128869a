import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../unpack/index.js';
import { SandboxError } from './types.js';

/**
 * A prepared lower dir holds this marker file, whose first line names its form:
 * - `overlay` (written by root): the layer's tree is `<dir>/root`, ready as an overlayfs lower:
 *   numeric owners, modes, mtimes, devices, hard links and symlinks as in the tar; OCI
 *   whiteouts `.wh.NAME` became char devices 0/0 and `.wh..wh..opq` the xattr
 *   `trusted.overlay.opaque=y` on its directory.
 * - `tar` (written without root, which can neither chown, mknod nor set trusted.* xattrs): the
 *   layer is `<dir>/layer.tar`, uncompressed and unchanged. A runner with root inside its
 *   sandbox (the VM guest) unpacks it there and turns whiteouts into overlay form itself.
 * The marker sits beside the tree, never in it, so the container does not see it.
 */
export const LOWER_FORM_MARKER = '.fetch-image-lower-form';
export const LOWER_TREE = 'root';
export const LOWER_TAR = 'layer.tar';

export type LowerDir =
  | { form: 'overlay'; tree: string }
  | { form: 'tar'; tar: string }
  /** No marker: a plain directory tree, used as it is. */
  | { form: 'plain'; tree: string };

export async function readLowerForm(dir: string): Promise<LowerDir> {
  let text: string;
  try {
    text = await readFile(join(dir, LOWER_FORM_MARKER), 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return { form: 'plain', tree: dir };
    throw e;
  }
  const form = text.split('\n')[0];
  if (form === 'overlay') return { form, tree: join(dir, LOWER_TREE) };
  if (form === 'tar') return { form, tar: join(dir, LOWER_TAR) };
  throw new SandboxError(`lower dir '${dir}': unknown form '${form}' in ${LOWER_FORM_MARKER}; delete the dir to have it prepared again`);
}
