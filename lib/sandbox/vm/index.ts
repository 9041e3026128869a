// The vm runner of the root stage: QEMU with the Debian kernel and our own initrd, KVM when it
// works, TCG when not. Needs no root.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RootStageRequest, RootStageResult } from '../types.js';
import { renderJob } from './guest-init.js';
import { ensureInitrd } from './initrd.js';
import { findKernel } from './kernel.js';
import { probeKvm, type KvmProbeOptions } from './kvm-probe.js';
import { describeStage, runGuest, type Accel, type Share } from './qemu.js';
import { extractUpper } from './upper.js';

export { findKernel } from './kernel.js';
export { ensureInitrd, planInitrd, buildInitrd } from './initrd.js';
export { probeKvm, defaultProbeCacheFile } from './kvm-probe.js';
export type { KvmAnswer, KvmProbeOptions } from './kvm-probe.js';

export const OUTPUT_TAIL_LINES = 20;

export interface VmOptions {
  /** Force an accelerator instead of probing (tests, --accel). */
  accel?: Accel;
  /** Probe settings (device, cache file, boot id, timeout). */
  probe?: Omit<KvmProbeOptions, 'kernel' | 'initrd'>;
  /** One-line notes for the user (the TCG fallback). */
  onNote?: (line: string) => void;
}

export class VmStageError extends Error {
  override name = 'VmStageError';
}

/** Runs the root stage in a VM; the upper dir comes back in tar form in `req.upperDir`. */
export async function runVmRootStage(req: RootStageRequest, opts: VmOptions = {}): Promise<RootStageResult> {
  const kernel = findKernel(req.kernel);
  const initrd = await ensureInitrd({ kernel }, req.storeDir);
  const work = mkdtempSync(join(tmpdir(), 'fetch-image-vm-'));
  try {
    let accel = opts.accel;
    if (!accel) {
      const answer = await probeKvm({ ...opts.probe, kernel: kernel.image, initrd: initrd.path });
      accel = answer.accel;
      if (accel === 'tcg') opts.onNote?.(`vm sandbox: no working KVM (${answer.reason}): running under TCG emulation, much slower`);
    }
    const xchg = join(work, 'xchg');
    mkdirSync(xchg);
    const files = renderJob({ storeDir: req.storeDir.logical, lowers: req.lowerDirs.length, network: req.network, env: req.env });
    writeFileSync(join(xchg, 'job.sh'), files['job.sh']);
    writeFileSync(join(xchg, 'run.sh'), files['run.sh']);
    writeFileSync(join(xchg, 'script'), req.script);
    const disk = join(work, 'upper.img');
    makeUpperDisk(disk, req.diskSizeMiB);
    const shares: Share[] = [
      { tag: 'xchg', path: xchg, readonly: false },
      { tag: 'store', path: req.storeDir.real, readonly: true },
      ...req.lowerDirs.map((path, i) => ({ tag: `lower${i}`, path, readonly: true })),
    ];
    for (const s of shares) if (!existsSync(s.path)) throw new VmStageError(`vm sandbox: ${s.tag === 'store' ? 'the store' : s.tag} dir '${s.path}' does not exist`);

    const tail: string[] = [];
    const run = await runGuest(
      { kernel: kernel.image, initrd: initrd.path, accel, memoryMiB: req.memoryMiB, mode: 'run', shares, disk, network: req.network, outputSocket: join(work, 'out.sock') },
      {
        timeoutMs: req.timeoutMs,
        ...(req.signal ? { signal: req.signal } : {}),
        onOutput: (line) => {
          tail.push(line);
          if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
          req.onOutput?.(line);
        },
      },
    );
    const where = describeStage(run.stage);
    if (run.aborted) throw new VmStageError(`vm sandbox: interrupted while ${where}`);
    if (run.timedOut) throw new VmStageError(`vm sandbox: timed out after ${Math.round(req.timeoutMs / 1000)} s while ${where} (QEMU killed; raise --timeout if the script needs longer)`);
    if (run.error) throw new VmStageError(`vm sandbox: the guest failed while ${where}: ${run.error}`);
    if (run.stage !== 'done') {
      const last = run.consoleTail.slice(-5).join(' | ');
      throw new VmStageError(`vm sandbox: QEMU exited (${run.exit.code ?? run.exit.signal}) while ${where}${last ? `: ${last}` : ''}`);
    }
    const exitCode = Number(readFileSync(join(xchg, 'exit-code'), 'utf8').trim());
    if (!Number.isInteger(exitCode)) throw new VmStageError('vm sandbox: the guest did not report the exit code');
    await extractUpper(join(xchg, 'upper.cpio'), req.upperDir, { owners: process.getuid?.() === 0 });
    return { exitCode, outputTail: tail, kind: 'vm', accel };
  } finally {
    rmSync(work, { recursive: true, force: true });
    initrd.dispose();
  }
}

/** An empty ext4 file system of `sizeMiB` (sparse) for the upper and work dirs. */
function makeUpperDisk(path: string, sizeMiB: number): void {
  if (!Number.isInteger(sizeMiB) || sizeMiB < 8) throw new VmStageError(`vm sandbox: diskSize ${sizeMiB} MiB is too small (at least 8)`);
  // No journal: the disk lives for one run and QEMU caches it unsafely anyway.
  const r = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-O', '^has_journal', '-m', '0', '-E', 'root_owner=0:0', path, `${sizeMiB}M`], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new VmStageError(`vm sandbox: cannot make the upper disk with mke2fs: ${(r.stderr || r.error?.message || '').trim()} (apt-get install e2fsprogs)`);
}
