import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { isRealRoot } from '../privilege.js';

export type NamespaceAccess = { ok: true } | { ok: false; reason: string };

let probed: Promise<NamespaceAccess> | undefined;

/**
 * Whether the namespace sandbox can run here, probed once per process: root, and a throwaway
 * mount namespace in which an overlay mounts (a few milliseconds).
 */
export function namespaceAccess(): Promise<NamespaceAccess> {
  probed ??= probe();
  return probed;
}

async function probe(): Promise<NamespaceAccess> {
  if (!(await isRealRoot())) {
    const user = userInfo().username;
    return {
      ok: false,
      reason: `the namespace sandbox runs as root only (user '${user}' is not root): run the build as root, or use --sandbox vm, which needs no root`,
    };
  }
  const dir = await mkdtemp(join(tmpdir(), 'fetch-image-ns-probe-'));
  try {
    for (const d of ['l', 'u', 'w', 'm']) await mkdir(join(dir, d));
    const args = ['--mount', '--pid', '--uts', '--ipc', '--net', '--fork', '--kill-child', '--propagation', 'private', '--',
      'mount', '-t', 'overlay', 'overlay', '-o', 'lowerdir=l,upperdir=u,workdir=w', 'm'];
    const { code, stderr } = await run('unshare', args, dir);
    if (code === 0) return { ok: true };
    return { ok: false, reason: `namespaces or overlayfs do not work here (unshare: ${stderr.trim() || `exit ${code}`}); use --sandbox vm` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function run(command: string, args: string[], cwd: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    child.on('error', (e) => resolve({ code: null, stderr: `${command}: ${e.message}` }));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}
