// The root stage's interface (agreed in notes/BUILD-API.md; shared by the namespace and vm runners).

export type SandboxKind = 'namespace' | 'vm';

export interface RootStageRequest {
  /** Real host dirs, TOP FIRST, prepared by prepareLowerDir() (never modified). */
  lowerDirs: string[];
  /** Empty real dir; after the run holds the changes in tar form. */
  upperDir: string;
  /** Mounted read-only at `logical` inside. */
  storeDir: { real: string; logical: string };
  /** Whole script text (with #! line); run as uid 0. */
  script: string;
  /** The complete environment. */
  env: Record<string, string>;
  /** false: no network device / fresh net namespace, loopback only. */
  network: boolean;
  timeoutMs: number;
  memoryMiB: number;
  diskSizeMiB: number;
  kernel?: string;
  onOutput?: (line: string) => void;
  signal?: AbortSignal;
}

export interface RootStageResult {
  exitCode: number;
  outputTail: string[];
  kind: SandboxKind;
  accel?: 'kvm' | 'tcg';
}
