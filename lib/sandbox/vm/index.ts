// The vm runner of the root stage: QEMU with the Debian kernel and our own initrd, KVM when it
// works, TCG when not. Needs no root.
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLowerForm } from '../lower-form.js';
import { OutputTail } from '../output.js';
import { isRealRoot } from '../privilege.js';
import { stopOnSignal } from '../signals.js';
import { RootStageTimeoutError, SANDBOX_HOSTNAME, SandboxError, type RootStageRequest, type RootStageResult } from '../types.js';
import { renderJob, type GuestLowerForm } from './guest-init.js';
import { ensureInitrd } from './initrd.js';
import { findKernel } from './kernel.js';
import { probeKvm, type KvmProbeOptions } from './kvm-probe.js';
import { describeStage, runGuest, type Accel, type GuestStage, type Share } from './qemu.js';
import { extractUpper } from './upper.js';

export { findKernel } from './kernel.js';
export { ensureInitrd, planInitrd, buildInitrd } from './initrd.js';
export { probeKvm, defaultProbeCacheFile } from './kvm-probe.js';
export type { KvmAnswer, KvmProbeOptions } from './kvm-probe.js';

export interface VmOptions {
  /** Force an accelerator instead of probing (tests, --accel). */
  accel?: Accel;
  /** Probe settings (device, cache file, boot id, timeout). */
  probe?: Omit<KvmProbeOptions, 'kernel' | 'initrd'>;
  /** One-line notes when the request has no onNote. */
  onNote?: (line: string) => void;
}

/** The time limit hit inside the VM: the message names the stage it was in. */
export class VmTimeoutError extends RootStageTimeoutError {
  constructor(timeoutMs: number, outputTail: string[], readonly stage: GuestStage) {
    super('vm', timeoutMs, outputTail);
    this.name = 'VmTimeoutError';
    this.message = `the runAsRoot stage (vm sandbox) did not finish within ${timeoutMs / 1000} s and was killed while ${describeStage(stage)}; raise --timeout if it needs longer`;
  }
}

/** The lower dirs as the guest gets them: a tree to share, or a dir whose layer.tar it unpacks. */
async function guestLowers(dirs: readonly string[]): Promise<{ share: string; form: GuestLowerForm }[]> {
  const out: { share: string; form: GuestLowerForm }[] = [];
  for (const dir of dirs) {
    const lower = await readLowerForm(dir);
    out.push(lower.form === 'tar' ? { share: dir, form: 'tar' } : { share: lower.tree, form: 'tree' });
  }
  return out;
}

/** Runs the root stage in a VM; the upper dir comes back in tar form in `req.upperDir`. */
export async function runVmRootStage(req: RootStageRequest, opts: VmOptions = {}): Promise<RootStageResult> {
  if (readdirSync(req.upperDir).length > 0) throw new SandboxError(`the upper dir '${req.upperDir}' must be empty`);
  const kernel = findKernel(req.kernel);
  const lowers = await guestLowers(req.lowerDirs);
  const initrd = await ensureInitrd({ kernel }, req.storeDir);
  const work = mkdtempSync(join(tmpdir(), 'fetch-image-vm-'));
  // SIGINT/SIGTERM: QEMU is killed (through the abort), then the finally below cleans up.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  req.signal?.addEventListener('abort', onAbort, { once: true });
  if (req.signal?.aborted) stop.abort();
  let stopped: (() => void) | undefined;
  const release = stopOnSignal(() => new Promise<void>((resolve) => {
    stopped = resolve;
    stop.abort();
  }));
  try {
    let accel = opts.accel;
    if (!accel) {
      const answer = await probeKvm({ ...opts.probe, kernel: kernel.image, initrd: initrd.path, signal: stop.signal });
      accel = answer.accel;
      if (accel === 'tcg') (req.onNote ?? opts.onNote)?.(`vm sandbox: no working KVM (${answer.reason}): running under TCG emulation, much slower`);
    }
    const xchg = join(work, 'xchg');
    mkdirSync(xchg);
    const files = renderJob({ storeDir: req.storeDir.logical, lowers: lowers.map((l) => l.form), hostname: SANDBOX_HOSTNAME, network: req.network, env: req.env });
    writeFileSync(join(xchg, 'job.sh'), files['job.sh']);
    writeFileSync(join(xchg, 'run.sh'), files['run.sh']);
    writeFileSync(join(xchg, 'script'), req.script);
    const disk = join(work, 'upper.img');
    makeUpperDisk(disk, req.diskSizeMiB);
    const shares: Share[] = [
      { tag: 'xchg', path: xchg, readonly: false },
      { tag: 'store', path: req.storeDir.real, readonly: true },
      ...lowers.map((l, i) => ({ tag: `lower${i}`, path: l.share, readonly: true })),
    ];
    for (const s of shares) if (!existsSync(s.path)) throw new SandboxError(`vm sandbox: ${s.tag === 'store' ? 'the store' : s.tag} dir '${s.path}' does not exist`);

    const output = new OutputTail(req.onOutput);
    const run = await runGuest(
      { kernel: kernel.image, initrd: initrd.path, accel, memoryMiB: req.memoryMiB, mode: 'run', shares, disk, network: req.network, outputSocket: join(work, 'out.sock') },
      {
        timeoutMs: req.timeoutMs,
        signal: stop.signal,
        onOutput: (chunk) => output.push(chunk),
      },
    );
    const outputTail = output.end();
    const where = describeStage(run.stage);
    if (req.signal?.aborted) throw req.signal.reason instanceof Error ? req.signal.reason : new SandboxError('the runAsRoot stage (vm sandbox) was aborted');
    if (run.aborted) throw new SandboxError('the runAsRoot stage was interrupted by a signal');
    if (run.timedOut) throw new VmTimeoutError(req.timeoutMs, outputTail, run.stage);
    if (run.error) throw new SandboxError(`the vm sandbox failed while ${where}: ${run.error}`);
    if (run.stage !== 'done') {
      const last = run.consoleTail.slice(-5).join(' | ');
      throw new SandboxError(`the vm sandbox stopped while ${where} (QEMU exit ${run.exit.code ?? run.exit.signal})${last ? `: ${last}` : ''}`);
    }
    const exitCode = Number(readGuestFile(join(xchg, 'exit-code')).trim());
    if (!Number.isInteger(exitCode)) throw new SandboxError('the vm sandbox did not report the script\'s exit code');
    await extractUpper(join(xchg, 'upper.cpio'), req.upperDir, { owners: await isRealRoot() });
    return { exitCode, outputTail, kind: 'vm', accel };
  } finally {
    req.signal?.removeEventListener('abort', onAbort);
    rmSync(work, { recursive: true, force: true });
    initrd.dispose();
    release();
    stopped?.();
  }
}

/** A small file the guest wrote into the exchange share (never through a symlink it made). */
function readGuestFile(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buf = Buffer.alloc(64);
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** An empty ext4 file system of `sizeMiB` (sparse) for the upper and work dirs. */
function makeUpperDisk(path: string, sizeMiB: number): void {
  if (!Number.isInteger(sizeMiB) || sizeMiB < 8) throw new SandboxError(`vm sandbox: diskSize ${sizeMiB} MiB is too small (at least 8)`);
  // No journal: the disk lives for one run and QEMU caches it unsafely anyway.
  const r = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-O', '^has_journal', '-m', '0', '-E', 'root_owner=0:0', path, `${sizeMiB}M`], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new SandboxError(`vm sandbox: cannot make the upper disk with mke2fs: ${(r.stderr || r.error?.message || '').trim()} (apt-get install e2fsprogs)`);
}
