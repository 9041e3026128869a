// Temp entries (build dirs, imports, blob downloads) are named `<prefix>-<pid>-<random>` inside a
// store's temp areas, so their owner is known: this process removes its own when interrupted,
// and any process removes those whose owner is dead (SIGKILL, power loss).
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from './lock.js';
import { removeTree, removeTreeSync, treeBytes } from './fsutil.js';

const OWNER_RE = /^[^-]+-(\d+)-[A-Za-z0-9]+$/;

/** Every temp area of every store this process opened: what an interrupt handler cleans. */
const areas = new Set<string>();

export function registerTempArea(dir: string): void {
  areas.add(dir);
}

/** The pid that owns a temp entry, from its name; undefined for names we did not make. */
export function tempOwner(name: string): number | undefined {
  const m = OWNER_RE.exec(name);
  return m ? Number(m[1]) : undefined;
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Work that must be undone before this process's temp entries go (e.g. a path moved aside for a repair). */
const undoBeforeCleanup = new Set<() => void>();

/** Registers `undo` to run if the process is interrupted; returns the function that unregisters it. */
export function onInterruptUndo(undo: () => void): () => void {
  undoBeforeCleanup.add(undo);
  return () => undoBeforeCleanup.delete(undo);
}

/** Removes this process's temp entries in every area (synchronous: it runs in a signal handler). */
export function removeOwnTempEntries(): void {
  for (const undo of undoBeforeCleanup) {
    try {
      undo();
    } catch {
      // best effort: the entry stays a dead owner's, for verify and gc to find
    }
  }
  undoBeforeCleanup.clear();
  for (const dir of areas) {
    for (const name of entries(dir)) {
      if (tempOwner(name) !== process.pid) continue;
      // A write still queued in the thread pool may add a file while the tree goes: try again.
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          removeTreeSync(join(dir, name));
          break;
        } catch {
          // retried; what is left is a dead owner's entry for the next command to remove
        }
      }
    }
  }
}

export interface DeadTempEntry {
  path: string;
  bytes: number;
}

/** Temp entries in `dir` whose owner process no longer exists. */
export function deadTempEntries(dir: string): DeadTempEntry[] {
  const out: DeadTempEntry[] = [];
  for (const name of entries(dir)) {
    const pid = tempOwner(name);
    if (pid === undefined || pid === process.pid || processAlive(pid)) continue;
    const path = join(dir, name);
    if (lstatSync(path, { throwIfNoEntry: false })) out.push({ path, bytes: treeBytes(path) });
  }
  return out;
}

/** Removes the temp entries of dead processes in `dir`; returns what was removed. */
export async function sweepDeadTempEntries(dir: string): Promise<DeadTempEntry[]> {
  const removed: DeadTempEntry[] = [];
  for (const d of deadTempEntries(dir)) {
    try {
      await removeTree(d.path);
      removed.push(d);
    } catch {
      // another process is removing it too, or it cannot be removed: never a reason to fail the command
    }
  }
  return removed;
}
