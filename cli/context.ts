import { LocalStore } from '../lib/store/index.js';
import { cleanUpOnInterrupt } from './interrupt.js';

/** Options every command accepts. */
export interface GlobalArgs {
  store?: string;
  json?: boolean;
  quiet?: boolean;
}

/** The store the command works on; from now on an interrupt removes this process's temp entries. */
export function openStore(args: GlobalArgs): LocalStore {
  cleanUpOnInterrupt();
  return args.store ? new LocalStore({ root: args.store }) : new LocalStore();
}

/** Writes a result: JSON on stdout with --json, else the human lines. */
export function emit(args: GlobalArgs, json: unknown, human: () => string | string[]): void {
  if (args.json) {
    process.stdout.write(JSON.stringify(json, null, 2) + '\n');
    return;
  }
  const h = human();
  const lines = Array.isArray(h) ? h : [h];
  if (lines.length) process.stdout.write(lines.join('\n') + '\n');
}

/** Progress and notes go to stderr, and only when a person is watching. */
export function note(args: GlobalArgs, message: string): void {
  if (!args.quiet && process.stderr.isTTY) process.stderr.write(message + '\n');
}

/** Warnings (retries, fallbacks) go to stderr unless --quiet, terminal or not: a log reader needs them too. */
export function warn(args: GlobalArgs, message: string): void {
  if (!args.quiet) process.stderr.write(message + '\n');
}
