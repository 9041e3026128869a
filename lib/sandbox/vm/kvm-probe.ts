import { accessSync, constants, mkdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../store/index.js';
import { SandboxError } from '../types.js';
import { runGuest, type Accel } from './qemu.js';

export const KVM_DEVICE = '/dev/kvm';
/** A KVM guest reaches userspace in well under a second; QEMU's own start-up is the rest. */
export const KVM_PROBE_TIMEOUT_MS = 4000;

export interface KvmAnswer {
  accel: Accel;
  /** Why, in a few words (for the one-line note when it is TCG). */
  reason: string;
  cached: boolean;
}

export interface KvmProbeOptions {
  kernel: string;
  initrd: string;
  /** The KVM device to probe (default /dev/kvm). QEMU 7 always opens /dev/kvm, so another path
   * is bind-mounted over it in a private mount namespace for the probe boot (root only). */
  device?: string;
  timeoutMs?: number;
  /** The per-user cache file (default $XDG_CACHE_HOME/fetch-image/kvm-probe.json). */
  cacheFile?: string;
  /** This boot's id (default /proc/sys/kernel/random/boot_id): the answer holds until a reboot. */
  bootId?: string;
  qemu?: string;
  signal?: AbortSignal;
}

interface CacheRecord { bootId: string; device: string; accel: Accel; reason: string }

export function defaultProbeCacheFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'fetch-image', 'kvm-probe.json');
}

function currentBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

function readCache(file: string): CacheRecord[] {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return Array.isArray(parsed) ? parsed.filter(isRecord) : [];
  } catch {
    return [];
  }
}

function isRecord(x: unknown): x is CacheRecord {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  return typeof r.bootId === 'string' && typeof r.device === 'string' && (r.accel === 'kvm' || r.accel === 'tcg') && typeof r.reason === 'string';
}

/** Whether the device can be opened for KVM at all; a reason when not. */
export function kvmDeviceProblem(device: string): string | undefined {
  let st;
  try {
    st = statSync(device);
  } catch {
    return `${device} does not exist`;
  }
  if (!st.isCharacterDevice()) return `${device} is not a character device`;
  try {
    accessSync(device, constants.R_OK | constants.W_OK);
  } catch {
    return `${device} is not readable and writable by this user (add it to the kvm group)`;
  }
  return undefined;
}

/**
 * Does KVM work here? /dev/kvm existing is not enough (nested virtualisation may let QEMU open
 * it and then spin forever), so a tiny guest is booted with -accel kvm and must reach its /init
 * within the timeout. The answer is cached per boot.
 */
export async function probeKvm(opts: KvmProbeOptions): Promise<KvmAnswer> {
  const device = opts.device ?? KVM_DEVICE;
  const bootId = opts.bootId ?? currentBootId();
  const cacheFile = opts.cacheFile ?? defaultProbeCacheFile();
  const records = readCache(cacheFile);
  const hit = records.find((r) => r.bootId === bootId && r.device === device);
  if (hit) return { accel: hit.accel, reason: hit.reason, cached: true };

  const answer = await probeOnce(device, opts);
  if (opts.signal?.aborted) throw new SandboxError('the runAsRoot stage was interrupted by a signal (during the KVM probe)');
  const keep = records.filter((r) => r.bootId === bootId && r.device !== device);
  try {
    mkdirSync(dirname(cacheFile), { recursive: true });
    writeFileAtomic(cacheFile, JSON.stringify([...keep, { bootId, device, ...answer }], null, 2) + '\n');
  } catch {
    // an unwritable cache only costs the probe next time
  }
  return { ...answer, cached: false };
}

async function probeOnce(device: string, opts: KvmProbeOptions): Promise<{ accel: Accel; reason: string }> {
  const problem = kvmDeviceProblem(device);
  if (problem) return { accel: 'tcg', reason: problem };
  const timeoutMs = opts.timeoutMs ?? KVM_PROBE_TIMEOUT_MS;
  const wrap = device === KVM_DEVICE ? undefined : (argv: string[]): string[] => [
    'unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /dev/kvm && exec "$@"', device, ...argv,
  ];
  const started = Date.now();
  const run = await runGuest(
    { kernel: opts.kernel, initrd: opts.initrd, accel: 'kvm', memoryMiB: 128, mode: 'probe', shares: [], network: false },
    { timeoutMs, ...(opts.qemu ? { qemu: opts.qemu } : {}), ...(wrap ? { wrap } : {}), ...(opts.signal ? { signal: opts.signal } : {}) },
  );
  if (run.stage === 'done') return { accel: 'kvm', reason: `a KVM guest booted in ${Date.now() - started} ms` };
  if (run.timedOut) return { accel: 'tcg', reason: `a KVM guest did not boot within ${timeoutMs / 1000} s` };
  const why = run.consoleTail.filter((l) => !/^qemu: module .* not found/.test(l)).slice(-1)[0] ?? `QEMU exited with ${run.exit.code ?? run.exit.signal}`;
  return { accel: 'tcg', reason: `QEMU could not use KVM: ${why}` };
}
