/** Which sandbox runs the root stage. */
export type SandboxKind = 'namespace' | 'vm';

/**
 * One runAsRoot stage: a script run as uid 0 over an overlay of read-only lower dirs, its
 * changes caught in `upperDir`. The runners know nothing of images: the caller unpacks layers
 * (prepareLowerDir), builds the script text and environment, and turns the upper dir into a
 * layer afterwards.
 */
export interface RootStageRequest {
  /**
   * Real host dirs, TOP FIRST, never modified. A dir prepared by prepareLowerDir() carries the
   * marker file {@link LOWER_FORM_MARKER} and is used in its form; a dir without the marker is
   * a plain tree used as it is (e.g. a store path's contents: no whiteouts, owners as on disk).
   */
  lowerDirs: string[];
  /**
   * Empty real dir; after the run it holds the changes in *tar form*: whiteouts as `.wh.NAME`
   * empty files, opaque dirs as `.wh..wh..opq`, real devices kept, owners/modes as the script
   * left them, mtimes untouched (the layer writer normalises them).
   */
  upperDir: string;
  /** The real store dir, mounted read-only at `logical` inside. */
  storeDir: { real: string; logical: string };
  /** The whole script text (with its #! line), run as uid 0; `set -e` is the caller's text. */
  script: string;
  /** The complete environment of the script (nothing else is passed). */
  env: Record<string, string>;
  /** false: a fresh network namespace (or no NIC), loopback only. */
  network: boolean;
  timeoutMs: number;
  /** vm only. */
  memoryMiB: number;
  /** vm only. */
  diskSizeMiB: number;
  /** vm only: an explicit kernel path. */
  kernel?: string;
  /** The script's stdout and stderr, line by line. */
  onOutput?: (line: string) => void;
  /** One-line notes for the user (vm: the fallback to TCG when KVM does not work). */
  onNote?: (line: string) => void;
  signal?: AbortSignal;
}

export interface RootStageResult {
  exitCode: number;
  /** The last {@link OUTPUT_TAIL_LINES} lines of output. */
  outputTail: string[];
  kind: SandboxKind;
  accel?: 'kvm' | 'tcg';
}

export const OUTPUT_TAIL_LINES = 20;

/**
 * The host name inside every sandbox (uts namespace, VM guest): scripts that record it must
 * give the same bytes whichever sandbox ran them.
 */
export const SANDBOX_HOSTNAME = 'localhost';

/** A sandbox that cannot start or run: a one-line message saying what to do next. */
export class SandboxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SandboxError';
  }
}

/** The stage ran past its time limit and was killed with everything it started. */
export class RootStageTimeoutError extends SandboxError {
  constructor(readonly kind: SandboxKind, readonly timeoutMs: number, readonly outputTail: string[]) {
    super(`the runAsRoot stage (${kind} sandbox) did not finish within ${timeoutMs / 1000} s and was killed; raise --timeout if it needs longer`);
    this.name = 'RootStageTimeoutError';
  }
}
