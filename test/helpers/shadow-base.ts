import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { EntrySpec } from '../../store-fixtures/images/layer.js';

/**
 * A small Debian-like root file system as layer entries: the host's /usr/sbin/groupadd and
 * useradd with the libraries ldd lists for them, busybox-static as /bin/sh and its applets, and
 * the /etc files the shadow tools read. Enough for the seed's shadow-basic runAsRoot example.
 */
export function shadowBaseEntries(): EntrySpec[] {
  const programs = ['/usr/sbin/groupadd', '/usr/sbin/useradd'];
  const files = new Set(programs);
  for (const p of programs) {
    for (const line of execFileSync('ldd', [p]).toString().split('\n')) {
      const m = /(\/\S+) \(0x/.exec(line);
      if (m?.[1]) files.add(m[1]);
    }
  }
  const dirs = new Set<string>(['bin', 'etc', 'root', 'tmp', 'var', 'var/lib', 'srv', 'srv/old', 'srv/keep']);
  for (const f of files) for (let d = dirname(f); d !== '/'; d = dirname(d)) dirs.add(d.slice(1));
  const entries: EntrySpec[] = [...dirs].sort().map((path) => ({ type: 'dir', path, ...(path === 'tmp' ? { mode: 0o1777 } : {}) }));
  for (const f of [...files].sort()) entries.push({ type: 'file', path: f.slice(1), content: readFileSync(f), mode: 0o755 });
  entries.push({ type: 'file', path: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 });
  const applets = execFileSync('/bin/busybox', ['--list']).toString().split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) entries.push({ type: 'symlink', path: `bin/${a}`, target: 'busybox' });
  entries.push(
    { type: 'file', path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' },
    { type: 'file', path: 'etc/group', content: 'root:x:0:\nnogroup:x:65534:\n' },
    { type: 'file', path: 'etc/shadow', content: 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n', mode: 0o640 },
    { type: 'file', path: 'etc/gshadow', content: 'root:*::\nnogroup:*::\n', mode: 0o640 },
    { type: 'file', path: 'etc/login.defs', content: readFileSync('/etc/login.defs') },
    { type: 'file', path: 'etc/os-release', content: 'ID=debian-like-fixture\n' },
    { type: 'file', path: 'etc/motd', content: 'deleted by a test\n' },
    { type: 'file', path: 'srv/old/a', content: 'a\n' },
    { type: 'file', path: 'srv/old/b', content: 'b\n' },
    { type: 'file', path: 'srv/keep/c', content: 'c\n' },
  );
  return entries;
}
