import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { readLowerForm } from '../lower-form.js';
import { OutputTail } from '../output.js';
import { nulFields, python3 } from '../python.js';
import { stopOnSignal } from '../signals.js';
import { RootStageTimeoutError, SANDBOX_HOSTNAME, SandboxError, type RootStageRequest, type RootStageResult } from '../types.js';
import { upperRootLikeTopLower, upperToTarForm } from '../upper-form.js';
import { namespaceAccess } from './probe.js';
import { SETUP_PY } from './setup-py.js';

/*
 * Work dir of one run, beside the upper dir (overlayfs wants workdir on the upper's file
 * system) and removed afterwards:
 *   l/0 … l/N   symlinks to the lower trees, top first, `skel` last: short relative names keep
 *               the overlay's mount options far below the one-page limit whatever the paths,
 *               and no ':' or ',' in a path can break them
 *   skel/       the mount points the image may lack (proc, dev, tmp, the store dir) as the
 *               bottom lower: they need not be created in the merged tree, so the upper dir
 *               (the layer) only holds what the script changed
 *   u           symlink to the upper dir;  w/  overlay's workdir;  m/  the merged root
 *   script, config   read by the setup before pivot_root (config: NUL-separated fields)
 * All mounts are made inside a private mount namespace: when its last process ends they are
 * gone, whatever happened to us, so teardown is killing the processes and removing this dir.
 */

/** Exit status of a process killed by a signal, as shells report it. */
const SIGNAL_EXIT_BASE = 128;

export async function runNamespaceStage(req: RootStageRequest): Promise<RootStageResult> {
  req.signal?.throwIfAborted();
  const access = await namespaceAccess();
  if (!access.ok) throw new SandboxError(access.reason);
  const trees: string[] = [];
  for (const dir of req.lowerDirs) {
    const lower = await readLowerForm(dir);
    if (lower.form === 'tar') {
      throw new SandboxError(`lower dir '${dir}' was prepared without root (tar form); the namespace sandbox needs it unpacked as root: delete it and prepare it again as root, or use --sandbox vm`);
    }
    trees.push(resolve(lower.tree));
  }
  const upper = resolve(req.upperDir);
  if ((await readdir(upper)).length > 0) throw new SandboxError(`the upper dir '${upper}' must be empty`);
  await upperRootLikeTopLower(upper, trees[0]);
  const base = await mkdtemp(join(dirname(upper), `.${basename(upper)}.ns-`));
  const stop = new AbortController();
  const run = (async () => {
    await layOut(base, trees, upper, req);
    return await spawnStage(base, req, stop.signal);
  })().finally(() => rm(base, { recursive: true, force: true }));
  const release = stopOnSignal(async () => {
    stop.abort(new SandboxError('the runAsRoot stage was interrupted by a signal'));
    await run.catch(() => undefined);
  });
  try {
    const exit = await run;
    await upperToTarForm(upper);
    return { ...exit, kind: 'namespace' };
  } finally {
    release();
  }
}

async function layOut(base: string, trees: string[], upper: string, req: RootStageRequest): Promise<void> {
  const logical = req.storeDir.logical;
  if (!logical.startsWith('/') || logical.split('/').some((c) => c === '..' || c === '.')) {
    throw new SandboxError(`store dir '${logical}' must be an absolute path without . or .. components`);
  }
  const skel = join(base, 'skel');
  for (const d of ['proc', 'dev', 'tmp', logical.slice(1)]) await mkdir(join(skel, d), { recursive: true, mode: 0o755 });
  await mkdir(join(base, 'l'));
  const lowers = [...trees, skel];
  for (const [i, tree] of lowers.entries()) await symlink(tree, join(base, 'l', String(i)));
  await symlink(upper, join(base, 'u'));
  await mkdir(join(base, 'w'));
  await mkdir(join(base, 'm'));
  await writeFile(join(base, 'script'), req.script, { mode: 0o500 });
  await chmod(join(base, 'script'), 0o500);
  for (const [k, v] of Object.entries(req.env)) {
    if (k === '' || k.includes('=') || k.includes('\0') || v.includes('\0')) throw new SandboxError(`environment variable '${k}' cannot be passed to the script (empty name, '=' or NUL)`);
  }
  const config = [
    lowers.length, 0, 'mknod', resolve(req.storeDir.real), logical, SANDBOX_HOSTNAME, req.network ? 1 : 0,
    ...Object.entries(req.env).flat(),
  ];
  await writeFile(join(base, 'config'), nulFields(config));
}

interface Exit {
  exitCode: number;
  outputTail: string[];
}

function spawnStage(base: string, req: RootStageRequest, stopped: AbortSignal): Promise<Exit> {
  const namespaces = ['--mount', '--pid', '--uts', '--ipc', ...(req.network ? [] : ['--net'])];
  // setpriv: if we die (even by SIGKILL), unshare gets SIGKILL, and --kill-child passes it on
  // to the namespace's pid 1, whose end kills every process left in the pid namespace.
  const argv = ['--pdeathsig', 'KILL', '--', 'unshare', ...namespaces, '--fork', '--kill-child', '--propagation', 'private', '--',
    python3(), '-I', '-S', '-c', SETUP_PY];
  return new Promise<Exit>((resolveRun, rejectRun) => {
    const child = spawn('setpriv', argv, { cwd: base, env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' }, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    const output = new OutputTail(req.onOutput);
    const stderr: Buffer[] = [];
    const status: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => output.push(b));
    child.stderr?.on('data', (b: Buffer) => stderr.push(b));
    const statusPipe = child.stdio[3];
    if (statusPipe && 'on' in statusPipe) statusPipe.on('data', (b: Buffer) => status.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killStage(child);
    }, req.timeoutMs);
    const onAbort = (): void => killStage(child);
    req.signal?.addEventListener('abort', onAbort, { once: true });
    stopped.addEventListener('abort', onAbort, { once: true });
    if (stopped.aborted || req.signal?.aborted) onAbort(); // stopped while the work dir was laid out
    child.on('error', (e) => {
      clearTimeout(timer);
      rejectRun(new SandboxError(`cannot start the namespace sandbox (setpriv/unshare from util-linux): ${e.message}`));
    });
    // 'close' comes once the process has ended and every holder of its output pipes with it.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      stopped.removeEventListener('abort', onAbort);
      const outputTail = output.end();
      if (timedOut) return rejectRun(new RootStageTimeoutError('namespace', req.timeoutMs, outputTail));
      if (stopped.aborted) return rejectRun(stopped.reason);
      if (req.signal?.aborted) return rejectRun(req.signal.reason);
      const setupError = Buffer.concat(status).toString('utf8').trim();
      if (setupError) return rejectRun(new SandboxError(`the namespace sandbox could not be set up: ${setupError}`));
      // Anything on stderr is unshare or the setup failing before the script started (the
      // script's stderr goes to the output pipe).
      const errText = Buffer.concat(stderr).toString('utf8').trim();
      if (errText) return rejectRun(new SandboxError(`the namespace sandbox failed: ${errText.split('\n').slice(-3).join(' / ')}`));
      const exitCode = code ?? SIGNAL_EXIT_BASE + signalNumber(signal);
      resolveRun({ exitCode, outputTail });
    });
  });
}

/**
 * Kills the namespace's pid 1: its end kills the rest of the pid namespace before unshare sees
 * it exit, so unshare's own end means the namespace is empty. Without a pid 1 to find, unshare
 * is killed and --kill-child takes the namespace down with it.
 */
function killStage(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  let pids: string[] = [];
  try {
    pids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    // gone already, or no children file in this kernel
  }
  for (const pid of pids) process.kill(Number(pid), 'SIGKILL');
  if (pids.length === 0) child.kill('SIGKILL');
  else setTimeout(() => child.kill('SIGKILL'), UNSHARE_GRACE_MS).unref();
}

/** How long unshare may take to notice its child's end before it is killed too. */
const UNSHARE_GRACE_MS = 5000;

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

function signalNumber(signal: NodeJS.Signals | null): number {
  return (signal && SIGNAL_NUMBERS[signal]) ?? 0;
}
