/**
 * Real proxies for the fetch tests: tinyproxy (HTTP forwarding and CONNECT) and dante
 * (SOCKS4/5), each on a free loopback port with its config and log in a test's temp dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, waitForPort } from './net.js';

export interface RunningProxy {
  port: number;
  /** e.g. http://127.0.0.1:1234 (tinyproxy) or 127.0.0.1:1234 (dante, add a socks scheme). */
  address: string;
  logFile: string;
  /** The proxy's log so far. */
  log(): string;
  stop(): Promise<void>;
}

async function startDaemon(cmd: string, args: string[], port: number, logFile: string): Promise<{ child: ChildProcess; stop: () => Promise<void> }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };
  try {
    await Promise.race([
      waitForPort(port, 10_000),
      exited.then(() => {
        const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
        throw new Error(`${cmd} exited early: ${stderr}${log}`);
      }),
    ]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, stop };
}

/**
 * tinyproxy in the foreground (-d), logging each request (LogLevel Info) to dir/tinyproxy.log;
 * with `auth`, clients must send Proxy-Authorization (BasicAuth).
 */
export async function startTinyproxy(dir: string, opts: { auth?: { user: string; password: string } } = {}): Promise<RunningProxy> {
  const port = await freePort();
  const logFile = join(dir, 'tinyproxy.log');
  const conf = join(dir, 'tinyproxy.conf');
  writeFileSync(conf, [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Allow 127.0.0.1',
    `LogFile "${logFile}"`,
    'LogLevel Info',
    'MaxClients 50',
    'Timeout 60',
    ...(opts.auth ? [`BasicAuth ${opts.auth.user} ${opts.auth.password}`] : []),
    '',
  ].join('\n'));
  const { stop } = await startDaemon('tinyproxy', ['-d', '-c', conf], port, logFile);
  return {
    port,
    address: `http://127.0.0.1:${port}`,
    logFile,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    stop,
  };
}

/** dante (danted) in the foreground, SOCKS4/5 without authentication, logging connects to dir/danted.log. */
export async function startDante(dir: string): Promise<RunningProxy> {
  const port = await freePort();
  const logFile = join(dir, 'danted.log');
  const conf = join(dir, 'danted.conf');
  writeFileSync(conf, [
    `logoutput: ${logFile}`,
    `internal: 127.0.0.1 port = ${port}`,
    'external: lo',
    'clientmethod: none',
    'socksmethod: none',
    'user.privileged: root',
    'user.unprivileged: nobody',
    'client pass {',
    '  from: 127.0.0.0/8 to: 0.0.0.0/0',
    '  log: connect disconnect error',
    '}',
    'socks pass {',
    '  from: 127.0.0.0/8 to: 0.0.0.0/0',
    '  command: connect',
    '  log: connect disconnect error',
    '}',
    '',
  ].join('\n'));
  const { stop } = await startDaemon('danted', ['-f', conf, '-p', join(dir, 'danted.pid'), '-N', '1'], port, logFile);
  return {
    port,
    address: `127.0.0.1:${port}`,
    logFile,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    stop,
  };
}
