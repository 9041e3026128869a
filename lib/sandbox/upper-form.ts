import { chmod, chown, stat } from 'node:fs/promises';
import { runPython } from './python.js';
import { SandboxError } from './types.js';

/*
 * After the run, overlayfs' upper dir becomes the layer's tree in tar form, in place:
 * - a whiteout (char device 0/0) becomes an empty file `.wh.NAME` (owner 0:0, mode 0644);
 * - an opaque directory (xattr `trusted.overlay.opaque`, or `user.overlay.opaque` on a
 *   `userxattr` mount in a user namespace) gets an empty `.wh..wh..opq` inside and loses the
 *   xattr; nixpkgs drops these, so a directory removed and re-created showed the base's old
 *   entries again;
 * - real device nodes, FIFOs, owners and modes stay as the script left them;
 * - a name the script made itself that starts with `.wh.` is refused: a layer cannot hold it.
 * Redirect and metacopy xattrs mean the overlay was mounted with features that make the upper
 * dir incomplete on its own; the runners turn them off, and their presence is an error.
 */
const TO_TAR_FORM_PY = String.raw`
import os, stat, sys
root = os.fsencode(sys.argv[1])
OPAQUE = ('trusted.overlay.opaque', 'user.overlay.opaque')  # listxattr gives str names
NOT_PLAIN = ('trusted.overlay.redirect', 'trusted.overlay.metacopy', 'user.overlay.redirect', 'user.overlay.metacopy')
whiteouts = opaque = 0

def marker(d, name):
    fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    os.fchown(fd, 0, 0)
    os.fchmod(fd, 0o644)
    os.close(fd)

def fail(msg, p):
    sys.exit(msg + ': ' + os.fsdecode(os.path.relpath(p, root)))

for d, dirs, files in os.walk(root):
    names = dirs + files
    for n in names:
        if n.startswith(b'.wh.'):
            fail('the script created a name starting with .wh. (reserved for layer whiteouts)', os.path.join(d, n))
    attrs = os.listxattr(d, follow_symlinks=False)
    for a in NOT_PLAIN:
        if a in attrs:
            fail('the overlay upper dir is not plain (' + a + ')', d)
    for a in OPAQUE:
        if a in attrs:
            if os.getxattr(d, a, follow_symlinks=False) in (b'y', b'x'):
                marker(d, b'.wh..wh..opq')
                opaque += 1
            os.removexattr(d, a, follow_symlinks=False)
    for n in files:
        p = os.path.join(d, n)
        st = os.lstat(p)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            os.unlink(p)
            marker(d, b'.wh.' + n)
            whiteouts += 1
        else:
            for a in NOT_PLAIN:
                if not stat.S_ISLNK(st.st_mode) and a in os.listxattr(p, follow_symlinks=False):
                    fail('the overlay upper dir is not plain (' + a + ')', p)
print(whiteouts, opaque)
`;

export interface TarFormCounts {
  whiteouts: number;
  opaqueDirs: number;
}

/** Converts an overlay upper dir to tar form in place (see above) and counts what it converted. */
export async function upperToTarForm(upperDir: string): Promise<TarFormCounts> {
  const out = (await runPython(TO_TAR_FORM_PY, [upperDir], Buffer.alloc(0), `converting the upper dir '${upperDir}'`)).toString('utf8');
  const m = /^(\d+) (\d+)\s*$/.exec(out);
  if (!m) throw new SandboxError(`converting the upper dir '${upperDir}': unexpected helper output '${out.trim()}'`);
  return { whiteouts: Number(m[1]), opaqueDirs: Number(m[2]) };
}

/**
 * Before the run: overlayfs gives the merged root the upper dir's owner and mode, so the upper
 * dir takes those of the top lower's root (root 0755 without lowers), as a copy-up would; a
 * caller's 0700 temp dir would lock other users out of / inside, and both sandboxes must give
 * the layer's root entry the same bytes.
 */
export async function upperRootLikeTopLower(upperDir: string, topLowerTree: string | undefined): Promise<void> {
  const st = topLowerTree === undefined ? { uid: 0, gid: 0, mode: 0o755 } : await stat(topLowerTree);
  await chown(upperDir, st.uid, st.gid);
  await chmod(upperDir, st.mode & 0o7777);
}
