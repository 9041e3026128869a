import { lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Lock {
  release(): void;
}

/** Whether a process with this pid exists (EPERM: it does, under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function ownerAlive(dir: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dir, 'owner'), 'utf8'));
  } catch {
    return true; // the owner is still writing its pid: treat as held
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  return processAlive(pid);
}

/** Whether the lock at `dir` is held by a live process (this one included). */
export function lockHeld(dir: string): boolean {
  try {
    lstatSync(dir);
  } catch {
    return false;
  }
  return ownerAlive(dir);
}

/** Locks this process holds, so that an interrupt handler can release them before exiting. */
const held = new Set<string>();

/** Releases every lock this process holds (synchronous: it runs in a signal handler). */
export function releaseAllLocks(): void {
  for (const dir of held) rmSync(dir, { recursive: true, force: true });
  held.clear();
}

/**
 * A cross-process lock: a directory made with mkdir (atomic on every file system) holding the
 * owner's pid. A lock whose owner died (e.g. SIGKILL) is taken over, so a crash never wedges
 * the store. Waits, polling with backoff, while another live process holds it.
 */
export async function acquireLock(dir: string, opts: { onWait?: () => void; timeoutMs?: number } = {}): Promise<Lock> {
  const deadline = Date.now() + (opts.timeoutMs ?? 24 * 3600_000);
  let delay = 5;
  let told = false;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'owner'), String(process.pid));
      held.add(dir);
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          held.delete(dir);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (!ownerAlive(dir)) {
      // Stale: rename first so two waiters cannot both delete a lock a third one just took.
      const stale = `${dir}.stale-${process.pid}-${Date.now()}`;
      try {
        renameSync(dir, stale);
        rmSync(stale, { recursive: true, force: true });
      } catch {
        // someone else handled it
      }
      continue;
    }
    if (!told) {
      opts.onWait?.();
      told = true;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${dir}`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 200);
  }
}
