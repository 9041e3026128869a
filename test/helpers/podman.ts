import { join } from 'node:path';
import { run, runOk } from './run.js';

/** podman with its own root under `dir` (vfs driver, as root here), for load, mount and inspect. */
export function podmanVfs(dir: string) {
  const base = ['--storage-driver', 'vfs', '--root', join(dir, 'proot'), '--runroot', join(dir, 'prun'), '--events-backend', 'none', '--cgroup-manager', 'cgroupfs'];
  return {
    load: async (archive: string) => (await runOk('podman', [...base, 'load', '-q', '-i', archive])).toString(),
    mount: async (image: string) => (await runOk('podman', [...base, 'image', 'mount', image])).toString().trim(),
    unmountAll: () => run('podman', [...base, 'image', 'unmount', '--all']),
  };
}
