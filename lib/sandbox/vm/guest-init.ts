// What runs inside the guest: /init (PID 1, busybox sh) and its helper scripts. These texts are
// part of the initrd's cache key, so any change here builds a new initrd.

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
while [ $i -lt $LOWERS ]; do
  mkdir -p /run/lower/$i
  mount -t 9p -o $ninep,ro,cache=loose lower$i /run/lower/$i || die "cannot mount lower dir $i"
  lowers="$lowers\${lowers:+:}/run/lower/$i"
  i=$((i+1))
done
if [ -z "$lowers" ]; then mkdir -p /run/lower/empty; lowers=/run/lower/empty; fi
mount -t overlay overlay -o lowerdir=$lowers,upperdir=$UPPER,workdir=/run/disk/work,redirect_dir=off,index=off,metacopy=off,xino=off /mnt || die "cannot mount the overlay"
mkdir -p /run/store
mount -t 9p -o $ninep,ro,cache=loose store /run/store || die "cannot mount the store"

# Mount points missing from the image are made for the run and removed from the upper dir after.
created=
need() { if [ ! -e "/mnt$1" ] && [ ! -L "/mnt$1" ]; then mkdir "/mnt$1" || die "cannot create mount point $1"; created="$1 $created"; fi; }
need /proc
need /dev
need /tmp
p=
for c in $(echo "$STORE_DIR" | tr / ' '); do p="$p/$c"; need "$p"; done
mount -t proc proc /mnt/proc
mount -t tmpfs -o mode=0755 dev /mnt/dev
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
ip link set lo up
if [ "$NETWORK" = 1 ]; then
  ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 || die "cannot configure the network"
fi
cp /xchg/script /mnt/tmp/.fetch-image-script
chmod 0755 /mnt/tmp/.fetch-image-script
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
for d in $created; do rmdir "$UPPER$d" 2>/dev/null || true; done

cd $UPPER
find . -type d -exec /bin/fi-mkprobe {} + || die "cannot build the probe tree"
REL= /bin/fi-opaque || die "cannot find the opaque directories"
find . -type c -exec /bin/fi-whiteout {} + || die "cannot convert the whiteouts"
if find . -name '*
*' | grep -q .; then die "a file name in the layer contains a newline (the vm sandbox cannot copy it back; use --sandbox namespace)"; fi
find . -mindepth 1 | cpio -o -H newc > /xchg/upper.cpio 2>/run/cpio.err || die "cannot archive the upper dir: $(cat /run/cpio.err)"
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
};

/** A word for sh: single-quoted, with embedded quotes closed and reopened. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const STORE_DIR = /^(\/[A-Za-z0-9._+-]+)+$/;

export interface GuestJob {
  storeDir: string;
  lowers: number;
  network: boolean;
  env: Record<string, string>;
}

/** The files the host writes into the exchange share: job.sh (sourced by /init) and run.sh. */
export function renderJob(job: GuestJob): { 'job.sh': string; 'run.sh': string } {
  if (!STORE_DIR.test(job.storeDir)) throw new Error(`vm sandbox: the store dir '${job.storeDir}' must be an absolute path of letters, digits and . _ + -`);
  const env = Object.entries(job.env).map(([k, v]) => {
    if (!ENV_NAME.test(k)) throw new Error(`vm sandbox: environment variable name '${k}' is not a valid name`);
    if (v.includes('\0')) throw new Error(`vm sandbox: environment variable ${k} contains a NUL byte`);
    return shQuote(`${k}=${v}`);
  });
  return {
    'job.sh': `STORE_DIR=${shQuote(job.storeDir)}\nLOWERS=${job.lowers}\nNETWORK=${job.network ? 1 : 0}\n`,
    'run.sh': `exec /bin/env -i ${env.join(' ')} /bin/chroot /mnt /tmp/.fetch-image-script\n`,
  };
}
