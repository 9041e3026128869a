import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, constants, createReadStream, createWriteStream, linkSync, lchownSync, lstatSync, lutimesSync, mkdirSync, openSync, readSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  NEWC_HEADER_SIZE, NEWC_TRAILER, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, newcLayout, parseNewcFixed,
} from './cpio.js';
import { errnoCode } from '../../unpack/index.js';
import { SandboxError } from '../types.js';

/** A member name from the guest, checked: relative, no '.', '..' or empty components. */
export function checkMemberName(raw: string): string | undefined {
  const name = raw.startsWith('./') ? raw.slice(2) : raw;
  if (name === '' || name === '.') return undefined;
  const parts = name.split('/');
  if (name.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..')) throw new SandboxError(`vm sandbox: unsafe name '${raw}' in the upper dir archive`);
  return name;
}

/**
 * The guest is not trusted (a root script can leave its chroot and write the archive itself):
 * nothing may be written through a symlink, so every parent of a member must be a real
 * directory that this archive made or `dest` itself.
 */
function checkParents(dest: string, name: string): void {
  const parts = name.split('/');
  let at = dest;
  for (const p of parts.slice(0, -1)) {
    at = join(at, p);
    let st;
    try {
      st = lstatSync(at);
    } catch {
      throw new SandboxError(`vm sandbox: '${name}' in the upper dir archive comes before its directory`);
    }
    if (!st.isDirectory()) throw new SandboxError(`vm sandbox: refusing '${name}' in the upper dir archive: '${parts.slice(0, parts.indexOf(p) + 1).join('/')}' is not a directory`);
  }
}

export interface ExtractOptions {
  /** Set numeric owners (needs root; a non-root caller keeps its own). */
  owners: boolean;
}

/**
 * Unpacks the guest's newc archive of the upper dir (already in tar form) into `dest`, keeping
 * types, modes, numeric owners, device numbers, hard links and mtimes. Directories get their
 * mode, owner and time after their contents are in, deepest first.
 */
export async function extractUpper(archive: string, dest: string, opts: ExtractOptions): Promise<{ entries: number }> {
  const fd = openSync(archive, constants.O_RDONLY | constants.O_NOFOLLOW);
  const dirs: { path: string; mode: number; uid: number; gid: number; mtime: number }[] = [];
  // Hard links: newc writers put the data on the last link; earlier ones have size 0.
  const links = new Map<string, { written?: string; pending: string[]; attrs?: { uid: number; gid: number; perm: number; mtime: number } }>();
  let at = 0;
  let entries = 0;
  try {
    for (;;) {
      const head = Buffer.alloc(NEWC_HEADER_SIZE);
      if (readSync(fd, head, 0, NEWC_HEADER_SIZE, at) < NEWC_HEADER_SIZE) throw new SandboxError('vm sandbox: the upper dir archive is truncated (no trailer)');
      const h = parseNewcFixed(head, at);
      const lay = newcLayout(at, h.nameSize, h.fileSize);
      const nameBuf = Buffer.alloc(h.nameSize);
      readSync(fd, nameBuf, 0, h.nameSize, lay.nameOffset);
      const rawName = nameBuf.subarray(0, Math.max(0, h.nameSize - 1)).toString('utf8');
      at = lay.next;
      if (rawName === NEWC_TRAILER) break;
      const name = checkMemberName(rawName);
      if (name === undefined) {
        // the upper dir's root: its owner and mode as the script left them
        if ((h.mode & S_IFMT) === S_IFDIR) dirs.unshift({ path: dest, mode: h.mode & 0o7777, uid: h.uid, gid: h.gid, mtime: h.mtime });
        continue;
      }
      entries++;
      checkParents(dest, name);
      const path = join(dest, name);
      const type = h.mode & S_IFMT;
      const perm = h.mode & 0o7777;
      const readData = (): Buffer => {
        const b = Buffer.alloc(h.fileSize);
        readSync(fd, b, 0, h.fileSize, lay.dataOffset);
        return b;
      };
      const finish = (): void => {
        if (opts.owners) lchownSync(path, h.uid, h.gid);
        if (type !== S_IFLNK) chmodSync(path, perm);
        lutimesSync(path, h.mtime, h.mtime);
      };
      switch (type) {
        case S_IFDIR:
          try {
            mkdirSync(path);
          } catch (e) {
            if (errnoCode(e) !== 'EEXIST' || !lstatSync(path).isDirectory()) throw e;
          }
          dirs.push({ path, mode: perm, uid: h.uid, gid: h.gid, mtime: h.mtime });
          break;
        case S_IFREG: {
          const key = `${h.devMajor}:${h.devMinor}:${h.ino}`;
          const group = h.nlink > 1 ? links.get(key) ?? { pending: [] } : undefined;
          if (group) links.set(key, group);
          if (group?.written) {
            linkSync(group.written, path);
            break;
          }
          if (group && h.fileSize === 0) {
            group.pending.push(path);
            group.attrs = { uid: h.uid, gid: h.gid, perm, mtime: h.mtime };
            break;
          }
          await pipeline(
            h.fileSize > 0 ? createReadStream('', { fd, start: lay.dataOffset, end: lay.dataOffset + h.fileSize - 1, autoClose: false }) : [],
            createWriteStream(path, { flags: 'wx' }),
          );
          finish();
          if (group) {
            group.written = path;
            for (const p of group.pending) linkSync(path, p);
            group.pending = [];
          }
          break;
        }
        case S_IFLNK:
          symlinkSync(readData(), path);
          finish();
          break;
        case S_IFCHR:
        case S_IFBLK:
        case S_IFIFO: {
          const args = type === S_IFIFO ? [path, 'p'] : [path, type === S_IFCHR ? 'c' : 'b', String(h.rdevMajor), String(h.rdevMinor)];
          const r = spawnSync('mknod', args, { encoding: 'utf8' });
          if (r.status !== 0) {
            throw new SandboxError(`vm sandbox: cannot create ${type === S_IFIFO ? 'FIFO' : 'device node'} '${name}' from the script on the host: ${(r.stderr || r.error?.message || '').trim()}`
              + (type === S_IFIFO ? '' : ' (device nodes need a root caller)'));
          }
          finish();
          break;
        }
        case S_IFSOCK:
          break; // a tar layer cannot hold sockets (GNU tar skips them too)
        default:
          throw new SandboxError(`vm sandbox: '${name}' in the upper dir archive has an unknown file type (mode ${h.mode.toString(8)})`);
      }
    }
    // Links whose data never came: all empty files.
    for (const group of links.values()) {
      const [first, ...rest] = group.pending;
      if (!first) continue;
      closeSync(openSync(first, 'wx'));
      const a = group.attrs;
      if (a) {
        if (opts.owners) lchownSync(first, a.uid, a.gid);
        chmodSync(first, a.perm);
        lutimesSync(first, a.mtime, a.mtime);
      }
      for (const p of rest) linkSync(first, p);
    }
  } finally {
    closeSync(fd);
  }
  for (const d of dirs.reverse()) {
    if (opts.owners) lchownSync(d.path, d.uid, d.gid);
    chmodSync(d.path, d.mode);
    lutimesSync(d.path, d.mtime, d.mtime);
  }
  return { entries };
}
