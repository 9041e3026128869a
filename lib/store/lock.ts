import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Lock {
  release(): void;
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
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
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
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
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
