#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';
import { ERRNO_TEXT, EXIT, UserError, jsonError, wantsJson, type ErrorDetail } from './errors.js';
import { tryFastPath } from './fast-path.js';

/** The one place failures are rendered: a line (and any explanation) on stderr, and with --json the same as JSON on stdout. */
function fail(message: string, code: number, details: { [key: string]: ErrorDetail } = {}): never {
  if (wantsJson(process.argv.slice(2))) process.stdout.write(jsonError(message, code, details));
  process.stderr.write(`error: ${message.split('\n')[0]}\n` + (message.includes('\n') ? message.split('\n').slice(1).join('\n') + '\n' : ''));
  process.exit(code);
}

/** What the failed call was doing, in words ("cannot create directory /x"). */
const SYSCALL_VERB: Record<string, string> = {
  open: 'open', read: 'read', write: 'write', mkdir: 'create directory', scandir: 'read directory', rename: 'rename',
  unlink: 'remove', rmdir: 'remove directory', stat: 'read', lstat: 'read', copyfile: 'copy', symlink: 'create symlink', link: 'create link',
};

/** One line: for file-system errors, what was done to which path and what went wrong, without Node's syscall noise. */
function describeError(err: NodeJS.ErrnoException): string {
  if (err.code && err.path && ERRNO_TEXT[err.code]) {
    const verb = err.syscall ? SYSCALL_VERB[err.syscall] : undefined;
    return `${verb ? `cannot ${verb} ` : ''}${err.path}: ${ERRNO_TEXT[err.code]}`;
  }
  if (err.code && ERRNO_TEXT[err.code] && err.message?.startsWith(`${err.code}:`)) return `${ERRNO_TEXT[err.code]} (${err.message})`;
  return err.message ?? String(err);
}

// undici parses HTTP with a WebAssembly module (llhttp). V8 compiles it twice, quickly and
// then optimised in the background; the optimising pass costs ~35 MB of peak memory and ~40 ms
// (the process waits for it before exiting) and buys nothing measurable when the bodies are
// what takes the time (500 MB fetch: same speed, 156 → 125 MiB peak). Set before any is compiled.
setFlagsFromString('--liftoff-only');
// The young generation starts at 1 MiB and V8 grows it to 16 MiB once a download or a copy
// allocates steadily; nearly all of that is garbage within a chunk's lifetime, so the growth buys
// little speed and costs ~15 MiB of peak memory (500 MB fetch: 98 → 91 MiB, same time).
setFlagsFromString('--semi-space-growth-factor=1');

async function main(): Promise<void> {
  if (await tryFastPath(process.argv.slice(2))) return;
  const { runApp } = await import('./app.js');
  await runApp();
}

main().catch((e: unknown) => {
  if (e instanceof UserError) fail(e.message, e.exitCode, e.details);
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'EPIPE') process.exit(EXIT.ok);
  fail(describeError(err), EXIT.failure, err.code ? { errno: err.code, ...(err.path ? { path: err.path } : {}) } : {});
});
