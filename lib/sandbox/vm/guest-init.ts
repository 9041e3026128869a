// What runs inside the guest: /init (PID 1, busybox sh) and its helper scripts. These texts are
// part of the initrd's cache key, so any change here builds a new initrd.
import { SandboxError } from '../types.js';

/** Lines the guest prints on its console (ttyS0) to tell the host where it is. */
export const MARK = '@@fetch-image:';

/**
 * Opaque directories: busybox has no getfattr, so the guest cannot read
 * trusted.overlay.opaque directly. Instead it asks overlayfs itself: a read-only overlay of the
 * upper dir (as the top lower layer) over a "probe" tree that has every directory of the upper
 * dir with a marker file in it. Where a directory is opaque, overlayfs hides the probe's copy,
 * so its marker is missing. An opaque directory also hides the markers of everything below it,
 * so the walk prunes there and recurses with a new probe overlay rooted at that directory
 * (overlayfs ignores opacity on a layer's root). The answer is exactly the xattr, also for
 * opaque directories whose lower copy was empty.
 */
const FI_OPAQUE = `#!/bin/sh
# fi-opaque REL: write .wh..wh..opq into every opaque directory strictly below $UPPER$REL
set -e
m=/run/opq/$$
mkdir -p $m/b $m/p $m/m
mount --bind "$UPPER$REL" $m/b
mount --bind "/run/probe$REL" $m/p
mount -t overlay overlay -o ro,lowerdir=$m/b:$m/p $m/m
cd $m/m
find . -mindepth 1 -type d ! -exec test -e {}/.fetch-image-probe \\; -exec /bin/fi-mark-opaque {} \\; -prune
cd /
umount $m/m
umount $m/p
umount $m/b
`;

const FI_MARK_OPAQUE = `#!/bin/sh
# fi-mark-opaque ./DIR (relative to $UPPER$REL): DIR is opaque
set -e
d="$REL/\${1#./}"
: > "$UPPER$d/.wh..wh..opq"
chmod 0644 "$UPPER$d/.wh..wh..opq"
REL="$d" /bin/fi-opaque
`;

const FI_MKPROBE = `#!/bin/sh
# fi-mkprobe DIR...: the probe tree's copy of each upper directory, with its marker
set -e
for d; do mkdir -p "/run/probe/$d"; : > "/run/probe/$d/.fetch-image-probe"; done
`;

/** Tar-form lower dirs (prepared without root) are unpacked in the guest, then put in overlay form. */
const FI_LOWER_WHITEOUT = `#!/bin/sh
# fi-lower-whiteout ./DIR/.wh.NAME...: OCI whiteouts become overlay whiteouts (char 0/0)
set -e
for f; do
  d="\${f%/*}"
  n="\${f##*/}"
  n="\${n#.wh.}"
  rm -f "$f"
  rm -rf "$d/$n"
  mknod "$d/$n" c 0 0
done
`;

/**
 * busybox cannot set trusted.overlay.opaque, but overlayfs sets it on a directory made where
 * a lower one was removed: such a directory is made in a scratch overlay on the same disk, given
 * the original's owner and mode, filled with its entries (renames) and moved into its place.
 */
const FI_LOWER_OPAQUE = `#!/bin/sh
# fi-lower-opaque ./DIR/.wh..wh..opq...: DIR becomes an opaque directory
set -e
s=/run/disk/opaque-scratch
for f; do
  d="\${f%/*}"
  rm -f "$f"
  [ "$d" != . ] || continue
  rm -rf $s
  mkdir -p $s/l/x $s/u $s/w $s/m
  : > $s/l/x/f
  mount -t overlay overlay -o lowerdir=$s/l,upperdir=$s/u,workdir=$s/w $s/m
  rm -rf $s/m/x
  mkdir $s/m/x
  umount $s/m
  chown "$(stat -c %u:%g "$d")" $s/u/x
  chmod "$(stat -c %a "$d")" $s/u/x
  find "$d" -mindepth 1 -maxdepth 1 -exec mv {} $s/u/x/ \\;
  rmdir "$d"
  mv $s/u/x "$d"
done
rm -rf $s
`;

const FI_WHITEOUT = `#!/bin/sh
# fi-whiteout FILE...: overlay whiteouts (char 0/0) become OCI whiteout files .wh.NAME
set -e
for f; do
  [ "$(stat -c %t:%T "$f")" = 0:0 ] || continue
  rm -f "$f"
  w="\${f%/*}/.wh.\${f##*/}"
  : > "$w"
  chmod 0644 "$w"
done
`;

const INIT = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /run /xchg /mnt
/bin/busybox --install -s /bin
export PATH=/bin
umask 022
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
say() { echo "${MARK}$*" > /dev/console; }
die() { say "error:$*"; umount /xchg 2>/dev/null; poweroff -f; sleep 60; }
mode=run
for w in $(cat /proc/cmdline); do case "$w" in fetch_image.mode=*) mode=\${w#*=} ;; esac; done
if [ "$mode" = probe ]; then say ready; poweroff -f; sleep 60; fi

for m in $(cat /etc/fetch-image/modules); do insmod /lib/modules/$m.ko || die "cannot load kernel module $m"; done
ninep="trans=virtio,version=9p2000.L,msize=262144"
mount -t 9p -o $ninep xchg /xchg || die "cannot mount the exchange share"
. /xchg/job.sh
say stage:mount

i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mkdir -p /run/disk
mount -t ext4 /dev/vda /run/disk || die "cannot mount the upper disk"
UPPER=/run/disk/upper
export UPPER
mkdir $UPPER /run/disk/work
lowers=
i=0
for form in $LOWER_FORMS; do
  mkdir -p /run/share/$i
  mount -t 9p -o $ninep,ro,cache=loose lower$i /run/share/$i || die "cannot mount lower dir $i"
  l=/run/share/$i
  if [ "$form" = tar ]; then
    l=/run/disk/lower/$i
    mkdir -p $l
    tar -x --numeric-owner -f /run/share/$i/layer.tar -C $l || die "cannot unpack lower dir $i (its layer.tar) onto the disk: is diskSize large enough?"
    cd $l
    find . -name '.wh.*' ! -name '.wh..wh.*' -exec /bin/fi-lower-whiteout {} + || die "cannot convert the whiteouts of lower dir $i"
    find . -name '.wh..wh..opq' -exec /bin/fi-lower-opaque {} + || die "cannot convert the opaque dirs of lower dir $i"
    find . -name '.wh..wh.*' -exec rm -rf {} + || die "cannot remove the aufs metadata of lower dir $i"
    cd /
  fi
  lowers="$lowers\${lowers:+:}$l"
  i=$((i+1))
done
mkdir -p /run/skel/proc /run/skel/dev /run/skel/tmp "/run/skel$STORE_DIR"
# The upper root takes the top lower's owner and mode, as in the namespace runner.
top=\${lowers%%:*}
chown "$(stat -c %u:%g "\${top:-/run/skel}")" $UPPER
chmod "$(stat -c %a "\${top:-/run/skel}")" $UPPER
# The mount points the image may lack, as the bottom lower: the upper dir only gets what the
# script changed (the namespace runner does the same).
mount -t overlay overlay -o lowerdir=$lowers\${lowers:+:}/run/skel,upperdir=$UPPER,workdir=/run/disk/work,redirect_dir=off,index=off,metacopy=off,xino=off /mnt || die "cannot mount the overlay"
mkdir -p /run/store
mount -t 9p -o $ninep,ro,cache=loose store /run/store || die "cannot mount the store"
for d in /proc /dev /tmp "$STORE_DIR"; do
  [ -d "/mnt$d" ] && [ ! -L "/mnt$d" ] || die "cannot mount $d: $d in the image is not a directory"
done
mount -t proc proc /mnt/proc
mount -t tmpfs -o mode=0755,size=1024k dev /mnt/dev
mknod -m 0666 /mnt/dev/null c 1 3
mknod -m 0666 /mnt/dev/zero c 1 5
mknod -m 0666 /mnt/dev/full c 1 7
mknod -m 0666 /mnt/dev/random c 1 8
mknod -m 0666 /mnt/dev/urandom c 1 9
mknod -m 0666 /mnt/dev/tty c 5 0
mkdir /mnt/dev/pts /mnt/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /mnt/dev/pts
ln -s pts/ptmx /mnt/dev/ptmx
ln -s /proc/self/fd /mnt/dev/fd
ln -s /proc/self/fd/0 /mnt/dev/stdin
ln -s /proc/self/fd/1 /mnt/dev/stdout
ln -s /proc/self/fd/2 /mnt/dev/stderr
mount -t tmpfs -o mode=1777 shm /mnt/dev/shm
mount -t tmpfs -o mode=1777 tmp /mnt/tmp
mount --bind /run/store "/mnt$STORE_DIR"
mount -o remount,ro,bind "/mnt$STORE_DIR"
hostname "$GUEST_HOSTNAME"
ip link set lo up
if [ "$NETWORK" = 1 ]; then
  ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 || die "cannot configure the network"
fi
cp /xchg/script /mnt/tmp/.fetch-image-script
chmod 0500 /mnt/tmp/.fetch-image-script
stty -F /dev/ttyS1 raw -echo

say stage:script
sh /xchg/run.sh < /dev/null > /dev/ttyS1 2>&1
echo $? > /xchg/exit-code
say stage:collect
kill -9 -1 2>/dev/null
sleep 0.2
for t in /dev/pts /dev/shm /dev /proc /tmp "$STORE_DIR" ""; do
  umount "/mnt$t" 2>/dev/null || { sleep 0.5; umount "/mnt$t"; } || die "cannot unmount /mnt$t (the script left something running or mounted there)"
done

cd $UPPER
w=$(find . -name '.wh.*' | head -n 1)
[ -z "$w" ] || die "the script created a name starting with .wh. (reserved for layer whiteouts): \${w#./}"
find . -type d -exec /bin/fi-mkprobe {} + || die "cannot build the probe tree"
REL= /bin/fi-opaque || die "cannot find the opaque directories"
find . -type c -exec /bin/fi-whiteout {} + || die "cannot convert the whiteouts"
if find . -name '*
*' | grep -q .; then die "a file name in the layer contains a newline (the vm sandbox cannot copy it back; use --sandbox namespace)"; fi
find . | cpio -o -H newc > /xchg/upper.cpio 2>/run/cpio.err || die "cannot archive the upper dir: $(cat /run/cpio.err)"
cd /
umount /xchg
say done
poweroff -f
sleep 60
`;

/** The initrd's scripts: path inside the initrd → text (all mode 0755). */
export const GUEST_SCRIPTS: Readonly<Record<string, string>> = {
  init: INIT,
  'bin/fi-opaque': FI_OPAQUE,
  'bin/fi-mark-opaque': FI_MARK_OPAQUE,
  'bin/fi-mkprobe': FI_MKPROBE,
  'bin/fi-whiteout': FI_WHITEOUT,
  'bin/fi-lower-whiteout': FI_LOWER_WHITEOUT,
  'bin/fi-lower-opaque': FI_LOWER_OPAQUE,
};

/** A word for sh: single-quoted, with embedded quotes closed and reopened. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const STORE_DIR = /^(\/[A-Za-z0-9._+-]+)+$/;

export type GuestLowerForm = 'tree' | 'tar';

export interface GuestJob {
  storeDir: string;
  /** Top first: a tree shared as it is, or a dir with layer.tar to unpack in the guest. */
  lowers: GuestLowerForm[];
  hostname: string;
  network: boolean;
  env: Record<string, string>;
}

/** The files the host writes into the exchange share: job.sh (sourced by /init) and run.sh. */
export function renderJob(job: GuestJob): { 'job.sh': string; 'run.sh': string } {
  if (!STORE_DIR.test(job.storeDir)) throw new SandboxError(`vm sandbox: the store dir '${job.storeDir}' must be an absolute path of letters, digits and . _ + -`);
  const env = Object.entries(job.env).map(([k, v]) => {
    // env(1) takes any NAME=VALUE word, as execve does
    if (k === '' || k.includes('=') || k.includes('\0') || v.includes('\0')) throw new SandboxError(`environment variable '${k}' cannot be passed to the script (empty name, '=' or NUL)`);
    return shQuote(`${k}=${v}`);
  });
  return {
    'job.sh': [
      `STORE_DIR=${shQuote(job.storeDir)}`,
      `LOWER_FORMS=${shQuote(job.lowers.join(' '))}`,
      `GUEST_HOSTNAME=${shQuote(job.hostname)}`,
      `NETWORK=${job.network ? 1 : 0}`,
      '',
    ].join('\n'),
    'run.sh': `exec /bin/env -i ${env.join(' ')} /bin/chroot /mnt /tmp/.fetch-image-script\n`,
  };
}
