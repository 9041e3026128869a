import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions extends SpawnOptions {
  /** Written to the program's stdin, which is then closed. */
  input?: Buffer | string;
  /** How long the program may run before it is killed as hung (default 120 s). */
  hangAfterMs?: number;
}

const DEFAULT_HANG_MS = 120_000;

/** Where each thread of a process is waiting, from /proc: the clue a hung child leaves. */
function threadStates(pid: number): string {
  const tasks = `/proc/${pid}/task`;
  if (!existsSync(tasks)) return '(process gone)';
  const read = (f: string) => { try { return readFileSync(f, 'utf8').trim(); } catch { return '?'; } };
  return readdirSync(tasks).map((tid) => {
    const stack = read(`${tasks}/${tid}/stack`).split('\n').slice(0, 4).map((l) => l.replace(/^\[<[0-9a-f]+>\] /, '')).join(' < ');
    return `  ${tid} ${read(`${tasks}/${tid}/comm`)}: wchan=${read(`${tasks}/${tid}/wchan`)} syscall=${read(`${tasks}/${tid}/syscall`).split(' ')[0]} ${stack}`;
  }).join('\n');
}

interface NodeReport {
  javascriptStack?: { message?: string; stack?: string[] };
  libuv?: { type: string; is_active?: boolean; is_referenced?: boolean; fd?: number; filename?: string }[];
}

/** The JavaScript stack and live libuv handles from a Node diagnostic report in `dir`. */
function summariseReport(dir: string): string {
  const file = readdirSync(dir).find((f) => f.endsWith('.json'));
  if (!file) return '  (no diagnostic report was written)';
  const r = JSON.parse(readFileSync(join(dir, file), 'utf8')) as NodeReport;
  const stack = [r.javascriptStack?.message ?? '', ...(r.javascriptStack?.stack ?? []).slice(0, 8)].join('\n    ');
  const handles = (r.libuv ?? []).filter((h) => h.is_active).map((h) => `${h.type}${h.fd !== undefined ? ` fd ${h.fd}` : ''}${h.filename ? ` ${h.filename}` : ''}${h.is_referenced ? '' : ' (unref)'}`);
  return `  JavaScript: ${stack}\n  active libuv handles: ${handles.join(', ') || 'none'}`;
}

/**
 * Kills a child that outlived its time, after noting where its threads were blocked (and, for
 * Node, its JavaScript stack and live handles), so that a hang fails its test with a diagnosis
 * instead of stalling the whole suite.
 */
function watchForHang(child: ChildProcess, cmd: string, args: readonly string[], ms: number, reports: string | undefined, note: (text: string) => void): () => void {
  const timer = setTimeout(() => {
    const pid = child.pid;
    let text = `\n[test helper] ${cmd} ${args.join(' ')} still running after ${ms / 1000} s; killed as hung. Threads:\n${pid ? threadStates(pid) : '(no pid)'}\n`;
    note(text);
    if (!reports) { child.kill('SIGKILL'); return; }
    child.kill('SIGUSR2');
    setTimeout(() => {
      try { text += summariseReport(reports) + '\n'; } catch (e) { text += `  (report unreadable: ${(e as Error).message})\n`; }
      note(text);
      child.kill('SIGKILL');
    }, 1000);
  }, ms);
  return () => clearTimeout(timer);
}

/** For a Node child: the environment that makes SIGUSR2 write a diagnostic report into `dir`. */
function withReportOnSignal(env: NodeJS.ProcessEnv | undefined, dir: string): NodeJS.ProcessEnv {
  const base = env ?? process.env;
  const flags = `--report-on-signal --report-signal=SIGUSR2 --report-directory=${dir}`;
  return { ...base, NODE_OPTIONS: base.NODE_OPTIONS ? `${base.NODE_OPTIONS} ${flags}` : flags };
}

/** Runs a program to completion, capturing output; `input` is written to its stdin. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const { input, hangAfterMs, ...spawnOpts } = opts;
    const reports = cmd === 'node' ? mkdtempSync(join(tmpdir(), 'fi-report-')) : undefined;
    const env = reports ? withReportOnSignal(spawnOpts.env, reports) : spawnOpts.env;
    const child = spawn(cmd, args, { ...spawnOpts, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let hangNote = '';
    const watch = watchForHang(child, cmd, args, hangAfterMs ?? DEFAULT_HANG_MS, reports, (t) => { hangNote = t; });
    const stopWatching = () => {
      watch();
      if (reports) rmSync(reports, { recursive: true, force: true });
    };
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.once('error', (e) => { stopWatching(); reject(e); });
    child.once('close', (code, signal) => {
      stopWatching();
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() + hangNote });
    });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(input ?? '');
  });
}

/** Like run(), but throws with the program's stderr unless it exits 0. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<Buffer> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}
