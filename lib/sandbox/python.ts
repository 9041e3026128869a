import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { SandboxError } from './types.js';

/*
 * Node has no mknod, xattr, mount or pivot_root calls. python3 has all of them (os.mknod,
 * os.setxattr/getxattr, and libc through ctypes), is already a CI peer, and one process does
 * a whole batch with names as raw bytes; setfattr/getfattr (package `attr`) would need one
 * process per file or an escaped dump format, and mknod(1) one process per node.
 */

/** Debian's interpreter first: a version manager's `python3` shim costs tens of milliseconds per start. */
export function python3(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** Runs a Python program (isolated mode, no site packages) with `input` on stdin; resolves with its stdout. */
export function runPython(program: string, args: string[], input: Buffer, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(python3(), ['-I', '-S', '-c', program, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new SandboxError(`${what}: cannot run python3 (${e.message}); install python3`)));
    child.on('close', (code) => {
      if (code === 0) return resolve(Buffer.concat(out));
      const lines = Buffer.concat(err).toString('utf8').trim().split('\n');
      reject(new SandboxError(`${what}: ${lines[lines.length - 1] || `python3 exited with ${code}`}`));
    });
    child.stdin.on('error', () => undefined); // an early exit is reported by 'close'
    child.stdin.end(input);
  });
}

/** NUL-separated fields, the format the Python programs here read (paths are bytes, never text). */
export function nulFields(fields: (Buffer | string | number)[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) parts.push(Buffer.isBuffer(f) ? f : Buffer.from(String(f)), Buffer.from([0]));
  return Buffer.concat(parts);
}
