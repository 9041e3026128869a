// extraCommands: a shell script run inside the layer's root directory as the calling user, as
// nixpkgs' mkPureLayer runs it (`cd layer; ${extraCommands}`), with a cleared environment.
import { spawn } from 'node:child_process';

export interface ExtraCommandsContext {
  /** The materialised root directory: the script's working directory and `$out`. */
  root: string;
  /** A private scratch directory (`$TMPDIR`). */
  tmp: string;
  storeDir: string;
  sourceDateEpoch: number;
}

/**
 * The whole environment the script sees (documented in the README): `out` (= the working
 * directory, the layer root), `NIX_STORE`, `SOURCE_DATE_EPOCH`, `TMPDIR`, `HOME`
 * (/homeless-shelter, as in Nix builds), `PATH` (the system's standard directories), `LC_ALL=C`, `TZ=UTC`.
 */
export function extraCommandsEnv(ctx: ExtraCommandsContext): Record<string, string> {
  return {
    out: ctx.root,
    NIX_STORE: ctx.storeDir,
    SOURCE_DATE_EPOCH: String(ctx.sourceDateEpoch),
    TMPDIR: ctx.tmp,
    HOME: '/homeless-shelter',
    PATH: '/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin',
    LC_ALL: 'C',
    TZ: 'UTC',
  };
}

/** Runs the script with `sh -e`; a failure names the exit status and the script's last lines of output. */
export function runExtraCommands(script: string, ctx: ExtraCommandsContext, opts: { log?: (line: string) => void; signal?: AbortSignal } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-e', '-c', script], {
      cwd: ctx.root, env: extraCommandsEnv(ctx), stdio: ['ignore', 'pipe', 'pipe'], ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const tail: string[] = [];
    const onData = (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        if (!line) continue;
        tail.push(line);
        if (tail.length > 20) tail.shift();
        opts.log?.(`extraCommands: ${line}`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) return resolve();
      const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
      reject(new Error(`extraCommands ${how}${tail.length ? `; its last output:\n${tail.join('\n')}` : ''}`));
    });
  });
}
