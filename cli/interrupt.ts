// SIGINT and SIGTERM end a command at once, but first remove its temp entries and release its
// store locks, then exit 130 / 143 as a shell reports a process killed by those signals.
import { releaseAllLocks, removeOwnTempEntries } from '../lib/store/index.js';

const EXIT_ON: Readonly<Record<'SIGINT' | 'SIGTERM', number>> = { SIGINT: 130, SIGTERM: 143 };
let installed = false;

export function cleanUpOnInterrupt(): void {
  if (installed) return;
  installed = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      removeOwnTempEntries();
      releaseAllLocks();
      if (process.listenerCount(signal) > 1) return; // the command stops itself (mirror serve)
      process.stderr.write(`interrupted (${signal}): temporary files removed\n`);
      process.exit(EXIT_ON[signal]);
    });
  }
}
