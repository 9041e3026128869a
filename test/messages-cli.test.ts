// Messages through the CLI bundle (issue 13 items 15, 16, 18): network failures that say what
// they are doing, errors that name what and where, and terminal output that is right.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileHandler, makeTlsFiles, startServer, testBytes } from './helpers/http-servers.js';
import { freePort } from './helpers/net.js';
import { havePeer } from './helpers/peers.js';
import { run } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';
import { CLI_PATH } from './helpers/cli.js';

const env = { PATH: process.env.PATH, HOME: process.env.HOME };
const fi = (store: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}) => run('node', [CLI_PATH, '--store', store, ...args], { env: { ...env, ...extraEnv } });

/** Runs the CLI on a pseudo-terminal (util-linux `script`), as a person at a terminal would; returns what the terminal got. */
async function onTerminal(store: string, args: string[]): Promise<string> {
  const line = ['node', CLI_PATH, '--store', store, ...args].map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = await run('script', ['-qec', line, '/dev/null'], { env: { ...env, COLUMNS: '100' } });
  assert.is(r.code, 0, r.stdout.toString());
  return r.stdout.toString();
}

const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t0 = Date.now();
  const r = await f();
  return [r, Date.now() - t0];
};

test('unreachable URL or registry: a line per retry on stderr, --retry N bounds them, then one error', async () => {
  const t = tempDir();
  try {
    const port = await freePort();
    const store = join(t.path, 's');
    const [r, ms] = await timed(() => fi(store, ['url', '--retry', '2', `http://127.0.0.1:${port}/f.tar.gz`]));
    assert.is(r.code, 1, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    const retries = lines.filter((l) => l.includes('retrying in'));
    assert.ok(retries.length >= 1 && retries.length <= 2, r.stderr);
    for (const l of retries) assert.match(l, new RegExp(`^download of http://127\\.0\\.0\\.1:${port}/f\\.tar\\.gz: retrying in [0-9.]+ s \\(connection refused; retry [12] of 2\\)$`));
    assert.match(lines[lines.length - 1]!, new RegExp(`^error: download of http://127\\.0\\.0\\.1:${port}/f\\.tar\\.gz failed: connection refused \\(.*\\) \\(after 2 retries\\)$`));
    assert.ok(ms < 8000, `${ms} ms`);

    const [none, fast] = await timed(() => fi(store, ['url', '--retry', '0', `http://127.0.0.1:${port}/f.tar.gz`]));
    assert.is(none.code, 1);
    assert.not.match(none.stderr, /retrying/);
    assert.ok(fast < 3000, `--retry 0 fails at once (${fast} ms)`);
    const bad = await fi(store, ['url', '--retry', '-1', `http://127.0.0.1:${port}/x`]);
    assert.is(bad.code, 2);
    assert.match(bad.stderr, /--retry must be a non-negative integer, got -1/);

    // Two retries: the first wait (0.5-1 s) may end before the one-second mark that makes it worth a line; the second (1-2 s) never does.
    const pull = await fi(store, ['pull', '--retry', '2', '--tls-verify=false', `127.0.0.1:${port}/team/app:1`]);
    assert.is(pull.code, 1, pull.stderr);
    assert.match(pull.stderr, new RegExp(`GET https?://127\\.0\\.0\\.1:${port}/v2/: retrying in [0-9.]+ s \\(connection refused; retry [12] of 2\\)`));
    assert.match(pull.stderr, new RegExp(`error: cannot reach registry 127\\.0\\.0\\.1:${port}: .*connection refused`));
    const quiet = await fi(store, ['--quiet', 'url', '--retry', '2', `http://127.0.0.1:${port}/f.tar.gz`]);
    assert.is(quiet.stderr.trim().split('\n').length, 1, '--quiet: only the error');
  } finally {
    t.remove();
  }
});

test('errors name what and where: no binary cache, an unreachable cache, an untrusted certificate', async () => {
  if (!havePeer('openssl')) return;
  const t = tempDir();
  const tls = await makeTlsFiles(t.path);
  const srv = await startServer(fileHandler({ data: Buffer.from('secure bytes\n') }), { tls });
  try {
    const store = join(t.path, 's');
    const missing = await fi(store, ['mirror', 'import', '--from', join(t.path, 'nonexistent'), '--all']);
    assert.is(missing.code, 1);
    assert.is(missing.stderr, `error: no binary cache at ${join(t.path, 'nonexistent')} (no nix-cache-info: the directory does not exist)\n`);
    mkdirSync(join(t.path, 'empty'));
    const empty = await fi(store, ['mirror', 'import', '--from', join(t.path, 'empty'), '--all']);
    assert.is(empty.stderr, `error: no binary cache at ${join(t.path, 'empty')} (no nix-cache-info)\n`);

    // Files named on the command line that are not there: what was being read, and why not.
    writeFileSync(join(t.path, 'f.txt'), 'f\n');
    const added = (await fi(store, ['store', 'add', join(t.path, 'f.txt')])).stdout.toString().trim();
    const key = await fi(store, ['mirror', 'export', '--to', join(t.path, 'c'), '--sign-key', join(t.path, 'no.secret'), added]);
    assert.is(key.stderr, `error: cannot read secret key ${join(t.path, 'no.secret')}: no such file or directory\n`);
    const bundle = await fi(store, ['mirror', 'unbundle', join(t.path, 'no.closure')]);
    assert.is(bundle.stderr, `error: cannot read bundle ${join(t.path, 'no.closure')}: no such file or directory\n`);

    const port = await freePort();
    const path = '/nix/store/0c6kzph7l0dcbqmjap6wwmqz7xb8k4q2-x';
    const down = await fi(store, ['mirror', 'substitute', path, '--substituter', `http://127.0.0.1:${port}`, '--no-check-sigs']);
    assert.is(down.code, 1);
    assert.match(down.stdout.toString(), new RegExp(`^failed    ${path}: cache http://127\\.0\\.0\\.1:${port} unreachable \\(connection refused`));
    assert.not.match(down.stdout.toString(), /not found/);

    const untrusted = await fi(store, ['url', '--retry', '0', srv.url('/f.txt')]);
    assert.is(untrusted.code, 1);
    assert.match(untrusted.stderr, /certificate.*\(for a self-signed server: trust its CA with NIX_SSL_CERT_FILE=ca\.pem or --curl-opts '--cacert ca\.pem', or skip verification with --curl-opts '-k'\)/);
    const trusted = await fi(store, ['url', srv.url('/f.txt')], { NIX_SSL_CERT_FILE: tls.caFile });
    assert.is(trusted.code, 0, trusted.stderr);
  } finally {
    await srv.close();
    t.remove();
  }
});

test('terminal: export prints each path once, import counts what it did, progress keeps its last frame', async () => {
  if (!havePeer('script')) return;
  const t = tempDir();
  const srv = await startServer(fileHandler({ data: testBytes(2_500_000) }));
  try {
    const store = join(t.path, 's');
    writeFileSync(join(t.path, 'a.txt'), 'a\n');
    const added = await fi(store, ['store', 'add', join(t.path, 'a.txt')]);
    assert.is(added.code, 0, added.stderr);
    const path = added.stdout.toString().trim();
    const cache = join(t.path, 'cache');
    const exported = await onTerminal(store, ['mirror', 'export', '--to', cache, path]);
    assert.is(exported.split(path).length - 1, 1, `the path once: ${exported}`);
    assert.match(exported, /1 path written, 0 already in /);

    const again = await fi(store, ['mirror', 'import', '--from', cache, '--all', '--no-check-sigs']);
    assert.is(again.code, 0, again.stderr);
    assert.is(again.stdout.toString(), 'nothing to import: 1 path already valid\n');
    const fresh = await fi(join(t.path, 'fresh'), ['mirror', 'import', '--from', cache, '--all', '--no-check-sigs']);
    assert.is(fresh.stdout.toString(), `imported ${path}\n1 path imported\n`);

    // The final frame of a download's bar: full, with both sizes (not cut at the terminal's width).
    const shown = await onTerminal(store, ['url', srv.url('/blob.bin')]);
    const frames = shown.split(/\r|\x1b\[1G/).filter((f) => f.includes('ETA'));
    const last = frames[frames.length - 1]!;
    assert.match(last, /█{24} 2\.4 MiB \/ 2\.4 MiB .*ETA 00:00/);
  } finally {
    await srv.close();
    t.remove();
  }
});

test.run();
