/**
 * Registry credentials, found where skopeo and docker look for them.
 *
 * Lookup order (first hit wins; a file that does not exist is skipped):
 *   1. `creds` given by the caller (`--creds user:pass`) or `registryToken` (a bearer token),
 *      then `curlUser` (`-u user:pass` in the curl flags).
 *   2. `authFile` given by the caller, else `$REGISTRY_AUTH_FILE`, else
 *      `$XDG_RUNTIME_DIR/containers/auth.json` (`/run/containers/<uid>/auth.json` when unset)
 *      — containers/image's "path to auth", exactly one of these three.
 *   3. `$XDG_CONFIG_HOME/containers/auth.json` (default `~/.config/containers/auth.json`).
 *   4. `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
 *   5. `~/.dockercfg` (the legacy format: the `auths` map at top level).
 *   6. `netrcFile`: its entry for the registry's API host or name (without port), else `default`.
 * Within one file, as docker does: `credHelpers[<registry>]` → that helper; then `auths` keys,
 * most specific first (`host/ns/repo`, `host/ns`, `host`, then keys written as URLs such as
 * `https://index.docker.io/v1/`); then `credsStore` → that helper for everything.
 * A helper is `docker-credential-<name> get`, given the server URL on stdin, answering
 * `{"ServerURL","Username","Secret"}`; "credentials not found" means no hit.
 *
 * Nothing here ever prints a secret: errors name the file and key, never the value.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { netrcLookup, readNetrc } from '../fetch/index.js';
import { configHome, homeDir, runtimeDir } from '../xdg/index.js';
import { DEFAULT_DOMAIN, DOCKER_HUB_CREDENTIALS_KEY, type ImageReference } from './reference.js';

export interface Credentials {
  username: string;
  password: string;
  /** An OAuth refresh token (docker's `identitytoken`, or a helper's `<token>` user). */
  identityToken?: string;
  /** A ready bearer token (skopeo --registry-token). */
  registryToken?: string;
  /** Where they came from, for messages (never the value). */
  source: string;
}

/** Said when a registry wants credentials and none were found. */
export const DEFAULT_CREDENTIALS_HINT = 'use --creds, docker login or an auth.json';

export interface CredentialOptions {
  /** `user:password`, like skopeo --creds. */
  creds?: string;
  /** A bearer token used as-is (skopeo --registry-token). */
  registryToken?: string;
  /** Explicit auth file, like skopeo --authfile. */
  authFile?: string;
  /** Environment to read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Home directory (default $HOME if absolute, else the passwd entry's). */
  home?: string;
  /** How a user gives credentials, for messages when none were found (default: `use --creds, docker login or an auth.json`). */
  credentialsHint?: string;
  /** Seconds a credential helper may run (default 30). */
  helperTimeoutMs?: number;
  /** `user:password` from curl's `-u` (curl flags), used like `creds` after it. */
  curlUser?: string;
  /** A netrc file, asked last (its entries for the registry host only). */
  netrcFile?: string;
}

/** Splits `user:password` at the first ':' as skopeo does. */
export function parseCreds(creds: string): { username: string; password: string } {
  const i = creds.indexOf(':');
  if (i <= 0) throw new Error('invalid --creds: expected USERNAME:PASSWORD');
  return { username: creds.slice(0, i), password: creds.slice(i + 1) };
}

interface AuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
}

interface AuthFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** Reduces an auths key (`https://host/v1/`, `host:5000`, `host/ns`) to containers' normal form. */
export function normalizeAuthKey(key: string): string {
  let k = key.replace(/^https?:\/\//, '');
  k = k.split('/')[0]!;
  return k === 'index.docker.io' || k === 'registry-1.docker.io' ? DEFAULT_DOMAIN : k;
}

/** Keys to try for a reference, most specific first (containers/image authKeysForRef + docker's key). */
function keysFor(ref: ImageReference): string[] {
  const keys: string[] = [];
  const parts = ref.path.split('/');
  for (let n = parts.length; n >= 1; n--) keys.push(`${ref.domain}/${parts.slice(0, n).join('/')}`);
  keys.push(ref.domain);
  if (ref.domain === DEFAULT_DOMAIN) keys.push(DOCKER_HUB_CREDENTIALS_KEY);
  return keys;
}

function decodeEntry(entry: AuthEntry, where: string): Credentials | undefined {
  if (typeof entry !== 'object' || entry === null) throw new Error(`${where}: entry must be an object`);
  let username = '';
  let password = '';
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i === -1) throw new Error(`${where}: "auth" is not base64 of user:password`);
    username = decoded.slice(0, i);
    password = decoded.slice(i + 1);
  } else if (typeof entry.username === 'string' || typeof entry.password === 'string') {
    username = typeof entry.username === 'string' ? entry.username : '';
    password = typeof entry.password === 'string' ? entry.password : '';
  }
  const identityToken = typeof entry.identitytoken === 'string' && entry.identitytoken !== '' ? entry.identitytoken : undefined;
  if (username === '' && password === '' && identityToken === undefined) return undefined;
  return { username, password, ...(identityToken ? { identityToken } : {}), source: where };
}

async function readJson(path: string): Promise<unknown | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new Error(`cannot read auth file ${path}: ${code ?? String(err)}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    // The message of JSON.parse may quote the file's content, which may be a secret.
    throw new Error(`auth file ${path} is not valid JSON`);
  }
}

/** Runs `docker-credential-<helper> get` for `serverUrl`; undefined when it knows nothing. */
export async function runCredentialHelper(helper: string, serverUrl: string, env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) throw new Error(`invalid credential helper name '${helper}'`);
  const program = `docker-credential-${helper}`;
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(program, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.once('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(e.code === 'ENOENT' ? `credential helper ${program} not found on PATH` : `credential helper ${program}: ${e.code ?? e.message}`)));
    child.once('close', (c) => resolve({ code: c, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(serverUrl);
  });
  if (code !== 0) {
    const said = `${stdout}\n${stderr}`;
    if (/credentials not found/i.test(said)) return undefined;
    const first = (stderr.trim() || stdout.trim()).split('\n')[0]!.slice(0, 200);
    throw new Error(`credential helper ${program} get for ${serverUrl} exited ${code}${first ? `: ${first}` : ''}`);
  }
  let answer: unknown;
  try {
    answer = JSON.parse(stdout);
  } catch {
    throw new Error(`credential helper ${program} get for ${serverUrl}: answer is not JSON`);
  }
  if (typeof answer !== 'object' || answer === null) throw new Error(`credential helper ${program} get for ${serverUrl}: answer is not a JSON object`);
  const { Username, Secret } = answer as { Username?: unknown; Secret?: unknown };
  if (typeof Secret !== 'string' || Secret === '') return undefined;
  const source = `credential helper ${program}`;
  if (Username === '<token>') return { username: '', password: '', identityToken: Secret, source };
  return { username: typeof Username === 'string' ? Username : '', password: Secret, source };
}

/** The server URL a helper is asked about: docker's key for Docker Hub, else the host. */
function helperServerUrl(ref: ImageReference): string {
  return ref.domain === DEFAULT_DOMAIN ? DOCKER_HUB_CREDENTIALS_KEY : ref.domain;
}

async function fromFile(path: string, legacy: boolean, ref: ImageReference, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Credentials | undefined> {
  const raw = await readJson(path);
  if (raw === undefined) return undefined;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`auth file ${path}: not a JSON object`);
  const file: AuthFile = legacy ? { auths: raw as Record<string, AuthEntry> } : (raw as AuthFile);

  const helpers = file.credHelpers ?? {};
  for (const key of [ref.domain, ...(ref.domain === DEFAULT_DOMAIN ? [DOCKER_HUB_CREDENTIALS_KEY, 'index.docker.io'] : [])]) {
    const helper = helpers[key];
    if (typeof helper === 'string' && helper !== '') return runCredentialHelper(helper, helperServerUrl(ref), env, timeoutMs);
  }

  const auths = file.auths ?? {};
  if (typeof auths !== 'object' || auths === null) throw new Error(`auth file ${path}: "auths" must be an object`);
  for (const key of keysFor(ref)) {
    const entry = auths[key];
    if (entry !== undefined) {
      const c = decodeEntry(entry, `auth file ${path} key '${key}'`);
      if (c) return c;
    }
  }
  for (const [key, entry] of Object.entries(auths)) {
    if (normalizeAuthKey(key) === ref.domain) {
      const c = decodeEntry(entry, `auth file ${path} key '${key}'`);
      if (c) return c;
    }
  }

  if (typeof file.credsStore === 'string' && file.credsStore !== '') {
    return runCredentialHelper(file.credsStore, helperServerUrl(ref), env, timeoutMs);
  }
  return undefined;
}

/** The auth files to read, in order, with whether each is in the legacy format. */
export function authFilePaths(opts: CredentialOptions = {}): Array<{ path: string; legacy: boolean }> {
  const env = opts.env ?? process.env;
  const home = opts.home ?? homeDir(env);
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const runtime = runtimeDir(env);
  const primary = opts.authFile
    ?? (env.REGISTRY_AUTH_FILE || undefined)
    ?? (runtime ? join(runtime, 'containers', 'auth.json') : `/run/containers/${uid}/auth.json`);
  const xdgConfig = configHome({ ...env, HOME: home });
  const docker = env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, 'config.json') : join(home, '.docker', 'config.json');
  return [
    { path: primary, legacy: false },
    { path: join(xdgConfig, 'containers', 'auth.json'), legacy: false },
    { path: docker, legacy: false },
    { path: join(home, '.dockercfg'), legacy: true },
  ];
}

/** Finds credentials for `ref` (see the order at the top of this file); undefined = anonymous. */
export async function findCredentials(ref: ImageReference, opts: CredentialOptions = {}): Promise<Credentials | undefined> {
  if (opts.registryToken !== undefined) {
    if (opts.registryToken === '') throw new Error('invalid registry token: empty');
    return { username: '', password: '', registryToken: opts.registryToken, source: 'registry token option' };
  }
  if (opts.creds !== undefined) return { ...parseCreds(opts.creds), source: '--creds' };
  if (opts.curlUser !== undefined) return { ...parseCreds(opts.curlUser), source: "curl option '-u'" };
  const env = opts.env ?? process.env;
  const timeoutMs = opts.helperTimeoutMs ?? 30_000;
  const seen = new Set<string>();
  for (const { path, legacy } of authFilePaths(opts)) {
    if (seen.has(path)) continue;
    seen.add(path);
    const c = await fromFile(path, legacy, ref, env, timeoutMs);
    if (c) return c;
  }
  return opts.netrcFile === undefined ? undefined : fromNetrc(opts.netrcFile, ref);
}

/** The netrc entry for the host pulled from (API host first: docker.io is registry-1.docker.io). */
function fromNetrc(file: string, ref: ImageReference): Credentials | undefined {
  const entries = readNetrc(file);
  const hostOf = (authority: string): string => new URL(`http://${authority}`).hostname;
  for (const host of new Set([hostOf(ref.apiHost), hostOf(ref.domain)])) {
    const own = entries.find((e) => e.machine === host);
    if (own) return own.login !== '' || own.password !== '' ? { username: own.login, password: own.password, source: `netrc file ${file} machine ${host}` } : undefined;
  }
  const fallback = netrcLookup(entries, hostOf(ref.apiHost));
  return fallback ? { username: fallback.login, password: fallback.password, source: `netrc file ${file} default` } : undefined;
}
