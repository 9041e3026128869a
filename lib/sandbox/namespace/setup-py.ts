/**
 * The namespace runner's setup, run by python3 as pid 1 of the fresh namespaces that util-linux
 * `unshare` made, in the run's work dir (see runner.ts for its layout). Python because Node has
 * no mount(2), mknod(2) or pivot_root(2), and one interpreter does the whole mount tree in a
 * few milliseconds where a shell would start a process per step. Errors are written to fd 3
 * (closed on exec, so an empty fd 3 means the script started) and exit 1.
 *
 * Every mount point inside the overlay is opened component by component with O_NOFOLLOW and
 * mounted on through /proc/self/fd, so a base image whose /tmp or /nix is a symlink cannot make
 * a mount land on the host's file system.
 */
export const SETUP_PY = String.raw`
import ctypes, fcntl, os, stat, struct
STATUS = 3
# config: NUL-separated fields (see runner.ts); json, socket and platform would double the start-up time
with open('config', 'rb') as f:
    fields = f.read().split(b'\0')[:-1]
keys = ('lowers', 'userxattr', 'devices', 'storeReal', 'storeLogical', 'hostname', 'network')
cfg = {k: fields[i].decode() for i, k in enumerate(keys)}
env = {fields[i]: fields[i + 1] for i in range(len(keys), len(fields), 2)}
libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MNT_DETACH = 2
PIVOT_ROOT = {'x86_64': 155, 'aarch64': 41}

def die(msg):
    os.write(STATUS, msg.encode('utf8', 'replace'))
    os._exit(1)

def mount(src, target, fstype, flags, data, what):
    rc = libc.mount(src.encode() if src else None, target.encode(), fstype.encode() if fstype else None,
                    ctypes.c_ulong(flags), data.encode() if data else None)
    if rc != 0:
        die('mounting %s: %s' % (what, os.strerror(ctypes.get_errno())))

def at(fd):
    return '/proc/self/fd/%d' % fd

def dir_in(top, rel, what):
    fd = os.dup(top)
    for c in [c for c in rel.split('/') if c]:
        try:
            nxt = os.open(c, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as e:
            die('cannot mount %s: /%s in the image is not a directory (%s)' % (what, rel, e.strerror))
        os.close(fd)
        fd = nxt
    return fd

lowers = ':'.join('l/%d' % i for i in range(int(cfg['lowers'])))
opts = 'lowerdir=%s,upperdir=u,workdir=w,redirect_dir=off,metacopy=off,index=off,xino=off' % lowers
if cfg['userxattr'] == '1':
    opts += ',userxattr'
mount('overlay', 'm', 'overlay', 0, opts, 'the overlay (%s)' % opts)
root = os.open('m', os.O_PATH | os.O_DIRECTORY)

mount('proc', at(dir_in(root, 'proc', '/proc')), 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC, None, '/proc')

mount('tmpfs', at(dir_in(root, 'dev', '/dev')), 'tmpfs', MS_NOSUID | MS_NOEXEC, 'mode=755,size=1024k', '/dev')
dev = dir_in(root, 'dev', '/dev')
for name, major, minor in (('null', 1, 3), ('zero', 1, 5), ('full', 1, 7), ('random', 1, 8), ('urandom', 1, 9), ('tty', 5, 0)):
    if cfg['devices'] == 'mknod':
        os.mknod(name, stat.S_IFCHR | 0o666, os.makedev(major, minor), dir_fd=dev)
        os.chmod(name, 0o666, dir_fd=dev)
    else:  # a user namespace may not make device nodes: bind the host's
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666, dir_fd=dev))
        node = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=dev)
        mount('/dev/' + name, at(node), None, MS_BIND, None, '/dev/' + name)
for d in ('pts', 'shm'):
    os.mkdir(d, 0o755, dir_fd=dev)
mount('devpts', at(dir_in(dev, 'pts', '/dev/pts')), 'devpts', MS_NOSUID | MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=0620', '/dev/pts')
mount('tmpfs', at(dir_in(dev, 'shm', '/dev/shm')), 'tmpfs', MS_NOSUID | MS_NODEV, 'mode=1777', '/dev/shm')
for name, target in (('ptmx', 'pts/ptmx'), ('fd', '/proc/self/fd'), ('stdin', '/proc/self/fd/0'), ('stdout', '/proc/self/fd/1'), ('stderr', '/proc/self/fd/2')):
    os.symlink(target, name, dir_fd=dev)

mount('tmpfs', at(dir_in(root, 'tmp', '/tmp')), 'tmpfs', MS_NOSUID | MS_NODEV, 'mode=1777', '/tmp')

store = dir_in(root, cfg['storeLogical'], cfg['storeLogical'])
mount(cfg['storeReal'], at(store), None, MS_BIND, None, 'the store')
# A read-only bind must keep the flags the source mount has (a user namespace may not drop them).
bound = dir_in(root, cfg['storeLogical'], cfg['storeLogical'])
kept = os.statvfs(at(bound)).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
mount(None, at(bound), None, MS_BIND | MS_REMOUNT | MS_RDONLY | kept, None, 'the store read-only')

name = cfg['hostname'].encode()
if libc.sethostname(name, len(name)) != 0:
    die('sethostname: %s' % os.strerror(ctypes.get_errno()))
if cfg['network'] == '0':  # a fresh net namespace: bring loopback up, nothing else exists
    s = libc.socket(2, 2, 0)  # AF_INET, SOCK_DGRAM
    flags = struct.unpack('16sh', fcntl.ioctl(s, 0x8913, struct.pack('16sh', b'lo', 0)))[1]  # SIOCGIFFLAGS
    fcntl.ioctl(s, 0x8914, struct.pack('16sh', b'lo', flags | 1))  # SIOCSIFFLAGS |= IFF_UP
    os.close(s)

script = os.open('script', os.O_RDONLY)
os.set_inheritable(script, True)
os.fchdir(root)
if libc.syscall(PIVOT_ROOT[os.uname().machine], b'.', b'.') != 0:
    die('pivot_root: %s' % os.strerror(ctypes.get_errno()))
if libc.umount2(b'.', MNT_DETACH) != 0:
    die('detaching the old root: %s' % os.strerror(ctypes.get_errno()))
os.chdir('/')
os.umask(0o022)
os.dup2(1, 2)
os.set_inheritable(STATUS, False)
path = at(script)
try:
    os.execve(path, [path], env)
except OSError as e:
    die('cannot start the script (is its #! interpreter in the image?): %s' % e.strerror)
`;
