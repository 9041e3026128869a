// Usage through the shipped CLI, as a newcomer types it (issue 13): a pin can never be emptied
// into a prefetch, --curl-opts values are curl's, a typo of a command is not an image pull,
// options that do not apply are refused, usage errors exit 2, paths printed are absolute, and
// the config file refuses keys it does not have. Servers are loopback ones that record what
// reaches them, so "nothing was fetched" is checked, not assumed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { Hash } from '../lib/hash/index.js';
import { makeTlsFiles, startServer, type TestServer } from './helpers/http-servers.js';
import { run, type RunResult } from './helpers/run.js';
import { CLI_PATH } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const baseEnv = { PATH: process.env.PATH, HOME: '/nonexistent', XDG_CONFIG_HOME: '/nonexistent', NIX_CURL_FLAGS: '--retry 0' };
const cli = (args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<RunResult> =>
  run(process.execPath, [CLI_PATH, ...args], { env: { ...baseEnv, ...env }, ...(cwd ? { cwd } : {}) });

const PIN = Hash.of('sha256', 'pinned').nix32;

/** A registry that answers its ping and 404s everything else, and a file at /f.txt. */
async function recorder(): Promise<TestServer> {
  return startServer((req, res) => {
    if (req.url === '/v2/') res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    else if (req.url === '/f.txt') res.writeHead(200, { 'content-length': '6' }).end('hello\n');
    else res.writeHead(404).end();
  });
}

function usageError(r: RunResult, message: string | RegExp, what: string): void {
  assert.is(r.code, 2, `${what}: exit ${r.code}, ${r.stderr}`);
  if (typeof message === 'string') assert.is(r.stderr, `error: ${message}\n`, what);
  else assert.match(r.stderr, message, what);
}

test('item 1: an empty or missing --sha256/--hash is an error, never a prefetch', async () => {
  const t = tempDir();
  const srv = await recorder();
  try {
    const s = ['--store', join(t.path, 's')];
    const ref = `${srv.host}:${srv.port}/team/app:v1`;
    const url = srv.url('/f.txt');
    const cases: Array<[string[], string]> = [
      [['url', url, '--sha256', ''], '--sha256'],
      [['url', url, '--sha256'], '--sha256'],
      [['url', '--sha256', '--json', url], '--sha256'],
      [['url', url, '--hash='], '--hash'],
      [['url', url, '--hash', ''], '--hash'],
      [[ref, '--tls-verify=false', '--sha256', ''], '--sha256'],
      [[ref, '--tls-verify=false', '--sha256'], '--sha256'],
      [['pull', ref, '--tls-verify=false', '--hash', ''], '--hash'],
      [['pull', '--registry-version', 'v1', '--index-url', srv.origin, 'team/app:v1', '--sha256', ''], '--sha256'],
    ];
    for (const [args, flag] of cases) {
      const r = await cli([...s, ...args]);
      usageError(r, `empty hash given to ${flag}`, args.join(' '));
    }
    assert.equal(srv.requests, [], 'nothing may be fetched when the pin is empty');
    // Without any hash option it is a prefetch, as before.
    const pre = await cli([...s, 'url', url]);
    assert.is(pre.code, 0, pre.stderr);
    assert.is(pre.stdout.toString().trim(), Hash.of('sha256', 'hello\n').sri);
  } finally {
    await srv.close();
    t.remove();
  }
});

test('item 1: other options whose empty or odd value would switch a check off are refused', async () => {
  const t = tempDir();
  const srv = await recorder();
  try {
    const s = ['--store', join(t.path, 's')];
    const ref = `${srv.host}:${srv.port}/team/app:v1`;
    const cases: Array<[string[], string | RegExp]> = [
      [[ref, '--trusted-key', ''], 'empty value given to --trusted-key'],
      [[ref, '--substituter', ''], 'empty value given to --substituter'],
      [[ref, '--tls-verify='], "--tls-verify takes no value, or =true or =false; got '--tls-verify='"],
      [[ref, '--tls-verify=no'], "--tls-verify takes no value, or =true or =false; got '--tls-verify=no'"],
      [[ref, '--tlsVerify='], "--tls-verify takes no value, or =true or =false; got '--tlsVerify='"],
      [[ref, '--finalImageTag', ''], 'empty value given to --final-image-tag'],
      [['mirror', 'import', '--from', srv.origin, '--all', '--check-sigs='], "--check-sigs takes no value, or =true or =false; got '--check-sigs='"],
      [['mirror', 'sync', '--src-tls-verify=', ref, ref], "--src-tls-verify takes no value, or =true or =false; got '--src-tls-verify='"],
      [['mirror', 'export', '--to', join(t.path, 'c'), '--sign-key', '', '/nix/store/x0dpr9yz5h0fk5c5lpj7zzqjbdh3w8cz-x'], 'empty value given to --sign-key'],
      [['--store', '', 'store', 'ls'], 'empty value given to --store'],
      [['store', 'add', ''], 'empty path given to store add: name the file or directory to add'],
      [[ref, '--sha256', PIN, '--sha256', PIN], '--sha256 given more than once (it takes one value)'],
    ];
    for (const [args, message] of cases) usageError(await cli([...s, ...args]), message, args.join(' '));
    assert.equal(srv.requests, []);
  } finally {
    await srv.close();
    t.remove();
  }
});

test("item 5: --curl-opts takes curl's flags as its value: -k, '--retry 0', --curl-opts=-k", async () => {
  const t = tempDir();
  const tls = await makeTlsFiles(t.path);
  const body = Buffer.from('over tls\n');
  const https = await startServer((_req, res) => res.writeHead(200, { 'content-length': String(body.length) }).end(body), { tls });
  let failures = 0;
  const flaky = await startServer((_req, res) => {
    failures++;
    res.writeHead(503).end();
  });
  try {
    const s = ['--store', join(t.path, 's')];
    const env = { NIX_CURL_FLAGS: '' };
    const untrusted = await cli([...s, 'url', https.url('/f')], env);
    assert.is(untrusted.code, 1, 'the test CA is not trusted without -k');
    for (const form of [['--curl-opts', '-k'], ['--curl-opts=-k'], ['--curl-opts', '--insecure']]) {
      const r = await cli([...s, 'url', https.url('/f'), ...form], env);
      assert.is(r.code, 0, `${form.join(' ')}: ${r.stderr}`);
      assert.is(r.stdout.toString().trim(), Hash.of('sha256', body).sri);
    }
    const once = await cli([...s, 'url', '--curl-opts', '--retry 0', flaky.url('/x')], env);
    assert.is(once.code, 1, once.stderr);
    assert.is(failures, 1, '--retry 0 from --curl-opts: one attempt only');
    // The value is checked as curl flags, before any work, also on pulls.
    usageError(await cli([...s, 'url', https.url('/f'), '--curl-opts', '--bogus']), "unsupported curl option '--bogus' in --curl-opts", 'url --curl-opts --bogus');
    usageError(await cli([...s, 'pull', `${https.host}:${https.port}/a/b`, '--curl-opts', '--proxy-insecure']), "unsupported curl option '--proxy-insecure' in --curl-opts", 'pull');
  } finally {
    await https.close();
    await flaky.close();
    t.remove();
  }
});

/** A proxy recording the first line of each connection and refusing every tunnel (403). */
async function lineRecorder(): Promise<{ port: number; lines: string[]; close: () => Promise<void> }> {
  const lines: string[] = [];
  const server: NetServer = createNetServer((c) => {
    c.once('data', (d) => {
      lines.push(d.toString().split('\r\n')[0]!);
      c.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, lines, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('item 6: typos of commands are refused with a hint; other words, docker:// and -- pull', async () => {
  const t = tempDir();
  const srv = await recorder();
  const proxy = await lineRecorder();
  try {
    const s = ['--store', join(t.path, 's')];
    const hint = (word: string, meant: string) => `unknown command '${word}' (did you mean '${meant}'? to pull an image of that name: fetch-image pull ${word})`;
    for (const [args, meant] of [[['mirorr'], 'mirror'], [['stroe'], 'store'], [['stroe', 'ls'], 'store'], [['hahs'], 'hash'], [['hepl'], 'help'],
      [['versoin'], 'version'], [['Store', 'ls'], 'store'], [['nra', 'ls'], 'nar'], [['lcok'], 'lock'], [['buidl'], 'build']] as const) {
      usageError(await cli([...s, ...args]), hint(args[0], meant), args.join(' '));
    }
    usageError(await cli([...s, 'oci:./layout']), /^error: 'oci:' is a skopeo transport .* docker:\/\/oci:\.\/layout\)\n$/, 'oci:');

    // Anything else is an image reference: bare names (through a proxy that records the CONNECT),
    // typos given to `pull` or after `--`, and docker://REF.
    const viaProxy = { https_proxy: `http://127.0.0.1:${proxy.port}` };
    for (const args of [['ubuntu'], ['perl'], ['pull', 'mirorr'], ['--', 'stroe']]) {
      proxy.lines.length = 0;
      const r = await cli([...s, ...args], viaProxy);
      assert.is(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(proxy.lines, ['CONNECT registry-1.docker.io:443 HTTP/1.1'], `${args.join(' ')} pulls from Docker Hub: ${r.stderr}`);
    }
    const docker = await cli([...s, `docker://${srv.host}:${srv.port}/team/app:v1`, '--tls-verify=false']);
    assert.is(docker.code, 1, docker.stderr);
    assert.ok(srv.requests.some((q) => q.url === '/v2/team/app/manifests/v1'), srv.requests.map((q) => q.url).join(' '));
    srv.requests.length = 0;
    const sync = await cli([...s, 'mirror', 'sync', '--dry-run', '--src-tls-verify=false', '--dest-tls-verify=false',
      `docker://${srv.host}:${srv.port}/team/app:v3`, `docker://${srv.host}:${srv.port}/mirror/app`]);
    assert.is(sync.code, 1, sync.stderr);
    assert.ok(srv.requests.some((q) => q.url === '/v2/team/app/manifests/v3'), `${sync.stderr} ${srv.requests.map((q) => q.url).join(' ')}`);
    // A word after an option before the image may be that option's value, not a command.
    srv.requests.length = 0;
    const named = await cli([...s, '--final-image-name', 'store', `${srv.host}:${srv.port}/team/other:v2`, '--tls-verify=false']);
    assert.is(named.code, 1, named.stderr);
    assert.ok(srv.requests.some((q) => q.url === '/v2/team/other/manifests/v2'), `${named.stderr} ${srv.requests.map((q) => q.url).join(' ')}`);
    usageError(await cli([...s, '--arch', 'arm64', 'mirorr']), hint('mirorr', 'mirror'), '--arch arm64 mirorr');

    // Bare: the usage with the command list on stderr, exit 2 (an unset $REF must not pass);
    // help: the same on stdout, exit 0; help CMD: that command's help; version.
    const bare = await cli([...s]);
    assert.is(bare.code, 2);
    assert.is(bare.stdout.length, 0);
    assert.match(bare.stderr, /Commands:\n {2}fetch-image hash <command>[\s\S]*fetch-image mirror <command>/);
    assert.match(bare.stderr, /error: no command or image given/);
    const help = await cli(['help']);
    assert.is(help.code, 0, help.stderr);
    assert.match(help.stdout.toString(), /Commands:\n {2}fetch-image hash <command>[\s\S]*fetch-image mirror <command>/);
    const helpStore = await cli(['help', 'store']);
    assert.is(helpStore.code, 0, helpStore.stderr);
    assert.match(helpStore.stdout.toString(), /fetch-image store add <path>/);
    const version = await cli(['version']);
    const pkg = JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { version: string };
    assert.is(version.stdout.toString().trim(), pkg.version);
  } finally {
    await srv.close();
    await proxy.close();
    t.remove();
  }
});

test('item 7: options that do not apply are refused, before any request', async () => {
  const t = tempDir();
  const srv = await recorder();
  try {
    const s = ['--store', join(t.path, 's')];
    const ref = `${srv.host}:${srv.port}/team/app:v1`;
    const v1 = ['pull', '--registry-version', 'v1', '--index-url', srv.origin, 'team/app:v1'];
    const cases: Array<[string[], RegExp]> = [
      [[ref, '--tarball'], /^error: --tarball does not apply to a v2 pull/],
      [[ref, '--image-id', 'a'.repeat(64)], /^error: --image-id does not apply to a v2 pull/],
      [[ref, '--index-url', srv.origin, '--registry-url', srv.origin], /^error: --index-url, --registry-url do not apply to a v2 pull/],
      [[ref, '--nix', '--json'], /^error: --json does not apply with --nix/],
      [[ref, '--nix', '--format', 'oci'], /^error: --format oci does not apply with --nix/],
      [[ref, '--nix', '--sha256', PIN], /^error: --sha256\/--hash does not apply with --nix/],
      [[...v1, '--format', 'oci'], /^error: --format does not apply to a v1 pull/],
      [[...v1, '--variant', 'v8', '--arch', 'arm'], /^error: --arch, --variant do not apply to a v1 pull/],
      [[...v1, '--final-image-tag', 'x'], /^error: --final-image-tag does not apply to a v1 pull/],
      [[...v1, '--tls-verify=false'], /^error: --tls-verify does not apply to a v1 pull/],
      [[...v1, '--jobs', '8'], /^error: --jobs does not apply to a v1 pull/],
      [[...v1, '--nix'], /^error: --nix does not apply to a v1 pull/],
      [['url', srv.url('/f.txt'), '--base32', '--sha256', PIN], /^error: --base32 does not apply with a hash/],
      [['url', srv.url('/f.txt'), '--base32', '--json'], /^error: --base32 does not apply with --json/],
      [['hash', 'convert', '--to', 'nix32', '--type', 'sha512', `sha256-${Buffer.alloc(32).toString('base64')}`], /^error: --type sha512 does not apply to a sha256 hash/],
    ];
    for (const [args, message] of cases) usageError(await cli([...s, ...args]), message, args.join(' '));
    assert.equal(srv.requests, []);
  } finally {
    await srv.close();
    t.remove();
  }
});

test('item 8: usage errors exit 2: malformed hashes, --creds without a colon, curl flags, numbers', async () => {
  const t = tempDir();
  const srv = await recorder();
  try {
    const s = ['--store', join(t.path, 's')];
    const ref = `${srv.host}:${srv.port}/team/app:v1`;
    const cases: Array<[string[], string | RegExp]> = [
      [['hash', 'convert', '--to', 'nix32', 'sha256-xyz'], /^error: invalid SRI hash 'sha256-xyz'/],
      [['hash', 'convert', '--to', 'sri', '--type', 'sha256', 'zzzz'], /^error: .*zzzz/],
      [['url', srv.url('/f.txt'), '--sha256', 'not-a-hash'], /^error: --sha256: .*not-a-hash/],
      [[ref, '--creds', 'secret-without-colon'], 'invalid --creds: expected USERNAME:PASSWORD'],
      [['pull', '--registry-version', 'v1', '--index-url', srv.origin, 'team/app', '--creds', 'x'], 'invalid --creds: expected USERNAME:PASSWORD'],
      [[ref, '--curl-opts', '-k --frobnicate'], "unsupported curl option '--frobnicate' in --curl-opts"],
      [[ref, '--jobs', 'abc'], "--jobs expects a number, got 'abc'"],
      [[ref, '--jobs', '0'], '--jobs must be a positive integer, got 0'],
      [[ref, '--jobs', '1.5'], '--jobs must be a positive integer, got 1.5'],
      [['mirror', 'serve', '--max-concurrent', '0'], '--max-concurrent must be a positive integer, got 0'],
      [['mirror', 'sync', '--jobs', 'many', ref, ref], "--jobs expects a number, got 'many'"],
    ];
    for (const [args, message] of cases) {
      const r = await cli([...s, ...args]);
      usageError(r, message, args.join(' '));
      assert.not.match(r.stderr, 'secret-without-colon', 'credentials are never echoed');
    }
    assert.equal(srv.requests, []);
    // NIX_CURL_FLAGS is the environment, read when a download starts: a failure (exit 1) naming it.
    const env = await cli([...s, 'url', srv.url('/f.txt')], { NIX_CURL_FLAGS: '--frobnicate' });
    assert.is(env.code, 1, env.stderr);
    assert.match(env.stderr, "unsupported curl option '--frobnicate' in NIX_CURL_FLAGS");
  } finally {
    await srv.close();
    t.remove();
  }
});

test('item 12: empty or relative HOME/XDG variables are ignored; printed paths are absolute', async () => {
  const t = tempDir();
  try {
    const home = join(t.path, 'home');
    mkdirSync(home);
    writeFileSync(join(t.path, 'file.txt'), 'content\n');
    const realPath = (r: RunResult): string => {
      assert.is(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout.toString()) as { realPath: string }).realPath;
    };
    // XDG_DATA_HOME relative: ignored, the default under an absolute HOME is used.
    const rel = await cli(['--json', 'store', 'add', 'file.txt'], { HOME: home, XDG_DATA_HOME: 'data' }, t.path);
    assert.ok(realPath(rel).startsWith(join(home, '.local', 'share', 'fetch-image', 'nix', 'store') + '/'), realPath(rel));
    // --store and FETCH_IMAGE_STORE relative: taken against the current directory.
    const store = await cli(['--json', '--store', 'mystore', 'store', 'add', 'file.txt'], { HOME: home }, t.path);
    assert.ok(realPath(store).startsWith(join(t.path, 'mystore', 'nix', 'store') + '/'), realPath(store));
    const envStore = await cli(['--json', 'store', 'add', 'file.txt'], { HOME: home, FETCH_IMAGE_STORE: 'envstore' }, t.path);
    assert.ok(realPath(envStore).startsWith(join(t.path, 'envstore', 'nix', 'store') + '/'), realPath(envStore));
    // HOME empty or relative and XDG_CONFIG_HOME empty: the passwd home (only read: mirror config).
    for (const env of [{ HOME: '', XDG_CONFIG_HOME: '' }, { HOME: 'rel', XDG_CONFIG_HOME: 'cfg' }]) {
      const cfg = await cli(['--json', '--store', join(t.path, 's'), 'mirror', 'config'], env, t.path);
      assert.is(cfg.code, 0, cfg.stderr);
      assert.is((JSON.parse(cfg.stdout.toString()) as { file: string }).file, join(userInfo().homedir, '.config', 'fetch-image', 'config.json'));
    }
  } finally {
    t.remove();
  }
});

test('item 17: unknown keys and wrong types in the config file are errors naming the key and the file', async () => {
  const t = tempDir();
  const srv = await recorder();
  try {
    const file = join(t.path, 'config.json');
    const env = { FETCH_IMAGE_CONFIG: file };
    const s = ['--store', join(t.path, 's')];
    const cases: Array<[unknown, string]> = [
      [{ substituter: ['http://cache.lan'] }, `unknown key 'substituter' in ${file} (did you mean 'substituters'?)`],
      [{ trustedPublicKey: [] }, `unknown key 'trustedPublicKey' in ${file} (did you mean 'trustedPublicKeys'?)`],
      [{ mirrors: [] }, `unknown key 'mirrors' in ${file} (known keys: substituters, trustedPublicKeys, requireSigs)`],
      [{ requireSigs: 'yes' }, `'requireSigs' in ${file} must be true or false, got a string`],
      [{ substituters: 'http://cache.lan' }, `'substituters' in ${file} must be a list of strings, got a string`],
      [{ trustedPublicKeys: [1] }, `'trustedPublicKeys' in ${file} must be a list of non-empty strings, got a number in it`],
    ];
    for (const [json, message] of cases) {
      writeFileSync(file, JSON.stringify(json));
      usageError(await cli([...s, 'mirror', 'config'], env), message, JSON.stringify(json));
      usageError(await cli([...s, 'url', srv.url('/f.txt')], env), message, `url with ${JSON.stringify(json)}`);
    }
    assert.equal(srv.requests, []);
  } finally {
    await srv.close();
    t.remove();
  }
});

test.run();
