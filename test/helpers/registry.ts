import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, waitForPort } from './net.js';
import { runOk } from './run.js';
import { tempDir } from './tmp.js';

export interface RegistryOptions {
  /** Require HTTP basic auth with these credentials (an htpasswd file made by `htpasswd -Bbn`). */
  auth?: { username: string; password: string };
  /** Serve HTTPS with a fresh self-signed certificate for 127.0.0.1. */
  tls?: boolean;
  /** Storage directory to serve (kept on stop), e.g. filled by an earlier registry; default a fresh one. */
  dataDir?: string;
  /** More top-level configuration, e.g. the `auth: {token: …}` block of a token server. */
  extraConfig?: string;
}

export interface Registry {
  port: number;
  /** `http://127.0.0.1:PORT` (or https). */
  url: string;
  /** `127.0.0.1:PORT`, the registry part of an image reference. */
  host: string;
  /** PEM of the self-signed certificate when tls is on (trust it as a CA). */
  cert?: string;
  /** Path of that certificate, for tools that take a file. */
  certPath?: string;
  stop(): Promise<void>;
}

/**
 * Starts Debian's docker-registry (distribution 2.8) on a free loopback port with filesystem
 * storage in its own temp dir. Guard callers with havePeer('docker-registry').
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const tmp = tempDir('fi-registry-');
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log: {level: warn}',
    `storage: {filesystem: {rootdirectory: ${opts.dataDir ?? join(tmp.path, 'data')}}, delete: {enabled: true}}`,
  ];
  let cert: string | undefined;
  let certPath: string | undefined;
  try {
    const http = [`addr: 127.0.0.1:${port}`, 'secret: fetch-image-test'];
    if (opts.tls) {
      certPath = join(tmp.path, 'cert.pem');
      const keyPath = join(tmp.path, 'key.pem');
      await runOk('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath,
        '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
      cert = readFileSync(certPath, 'utf8');
      http.push(`tls: {certificate: ${certPath}, key: ${keyPath}}`);
    }
    lines.push(`http: {${http.join(', ')}}`);
    if (opts.auth) {
      const entry = await runOk('htpasswd', ['-Bbn', opts.auth.username, opts.auth.password]);
      writeFileSync(join(tmp.path, 'htpasswd'), entry);
      lines.push(`auth: {htpasswd: {realm: fetch-image-test, path: ${join(tmp.path, 'htpasswd')}}}`);
    }
    if (opts.extraConfig) lines.push(opts.extraConfig);
  } catch (e) {
    tmp.remove();
    throw e;
  }
  const config = join(tmp.path, 'config.yml');
  writeFileSync(config, lines.join('\n') + '\n');

  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d: Buffer) => { log = (log + d.toString()).slice(-4000); });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    tmp.remove();
  };
  try {
    await Promise.race([
      waitForPort(port),
      exited.then(() => { throw new Error(`docker-registry exited early: ${log}`); }),
    ]);
  } catch (e) {
    await stop();
    throw e;
  }
  const scheme = opts.tls ? 'https' : 'http';
  return {
    port, url: `${scheme}://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, stop,
    ...(cert !== undefined ? { cert, certPath: certPath! } : {}),
  };
}
