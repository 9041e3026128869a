// Exit codes (documented in the README):
export const EXIT = {
  ok: 0,
  failure: 1, // network, I/O, invalid input, anything else
  usage: 2, // bad command-line arguments
  verifyFailed: 3, // `store verify` found bad paths
  hashMismatch: 102, // a fixed output did not match its declared hash (as Nix's builders exit 102)
  notDeterministic: 104, // build --check / audit: a rebuild differs (Nix's "may not be deterministic")
} as const;

/** The `code` of `{"error": {…}}` under --json, by exit code. */
const CODE_NAMES: Readonly<Record<number, string>> = {
  [EXIT.failure]: 'failure', [EXIT.usage]: 'usage', [EXIT.verifyFailed]: 'verify-failed', [EXIT.hashMismatch]: 'hash-mismatch',
};

export type ErrorDetail = string | number | boolean | null | ErrorDetail[] | { [key: string]: ErrorDetail };

/** An error whose message is already a complete one-line explanation for the user. */
export class UserError extends Error {
  /** `details` are the facts behind the message, given as they are in the --json error. */
  constructor(message: string, readonly exitCode: number = EXIT.failure, readonly details: { [key: string]: ErrorDetail } = {}) {
    super(message);
  }
}

/** What --json prints on stdout for a failure: `{"error": {"code", "message", "exitCode", …details}}`. */
export function jsonError(message: string, exitCode: number, details: { [key: string]: ErrorDetail } = {}): string {
  const code = CODE_NAMES[exitCode] ?? 'failure';
  return JSON.stringify({ error: { code, message, exitCode, ...details } }, null, 2) + '\n';
}

/** Whether the command line asks for --json (read directly: a failure may come before or during parsing). */
export function wantsJson(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--json' || a === '--json=true') return true;
  }
  return false;
}

/** File-system error codes in words, for messages that name the file themselves. */
export const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory', EACCES: 'permission denied', EPERM: 'operation not permitted', EEXIST: 'already exists',
  ENOTDIR: 'not a directory', EISDIR: 'is a directory', ENOSPC: 'no space left on device', EROFS: 'read-only file system',
};

/** What went wrong, in words: `no such file or directory` for a file-system error, else the message. */
export function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return (code && ERRNO_TEXT[code]) ?? (e instanceof Error ? e.message : String(e));
}
