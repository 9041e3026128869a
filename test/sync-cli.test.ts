// `fetch-image mirror sync` as a process: killed mid-upload and re-run, Basic and Bearer auth on
// the destination (push scope, mounts), one-line errors without credentials, --json, --dry-run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import type { SyncSummary } from '../lib/sync/index.js';
import { makeImage, pushImage, type BuiltLayout, type LayerSpec } from '../store-fixtures/images/index.js';
import { startTokenServer } from '../store-fixtures/token-server/index.js';
import { freePort } from './helpers/net.js';
import { havePeer } from './helpers/peers.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { run, type RunResult } from './helpers/run.js';
import { CLI_PATH } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const have = () => havePeer('docker-registry') && havePeer('htpasswd') && havePeer('openssl');
const SECRET = 'n0t-in-any-message';

let tmp: { path: string; remove: () => void };
let src: Registry;
let image: BuiltLayout;
let sibling: BuiltLayout;
let cli: string[];

/** The shipped CLI's `mirror sync`. */
function cliArgs(): string[] {
  return [CLI_PATH, 'mirror', 'sync'];
}

function env(): NodeJS.ProcessEnv {
  // No docker config of the machine; no retries with backoff against a dead registry.
  return { PATH: process.env.PATH, HOME: tmp.path, NIX_CURL_FLAGS: '--retry 0' };
}

function sync(args: string[]): Promise<RunResult> {
  return run('node', [...cli, '--src-tls-verify=false', '--dest-tls-verify=false', ...args], { env: env() });
}

function summary(r: RunResult): SyncSummary {
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.toString()) as SyncSummary;
}

function oneLineError(r: RunResult): string {
  assert.is(r.code, 1, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^error: /);
  assert.is(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.not.ok(r.stderr.includes(SECRET), 'no password');
  assert.not.ok(r.stderr.includes(Buffer.from(`alice:${SECRET}`).toString('base64')), 'no Basic header');
  return r.stderr;
}

const layer = (name: string, size: number, seed: number): LayerSpec => ({
  compression: 'none',
  entries: [{ type: 'file', path: `${name}.txt`, content: `${name}\n` }, { type: 'random', path: `${name}.bin`, size, seed }],
});

test.before(async () => {
  if (!have()) return;
  tmp = tempDir('fi-sync-cli-');
  cli = cliArgs();
  // Small layers first, then a big one: with --jobs 1 they go in this order.
  image = await makeImage(join(tmp.path, 'image'), { layers: [layer('base', 100_000, 1), layer('mid', 100_000, 2), layer('big', 24_000_000, 3)] }, 'v1');
  sibling = await makeImage(join(tmp.path, 'sibling'), { layers: [layer('base', 100_000, 1), layer('own', 10_000, 4)] }, 'v1');
  src = await startRegistry();
  await pushImage(image.dir, src.port, 'team/app', 'v1');
  await pushImage(sibling.dir, src.port, 'team/sibling', 'v1');
});

test.after(async () => {
  if (!have()) return;
  await src?.stop();
  tmp?.remove();
});

/** A proxy in front of a registry recording uploads; `hold` stops forwarding a body once `when` says so. */
interface Proxy {
  host: string;
  log: Array<{ method: string; path: string; bytes: number }>;
  hold?: ((req: IncomingMessage, bytes: number) => boolean) | undefined;
  /** Like hold, decided before a byte of the request is forwarded (the registry never sees it). */
  holdAtStart?: ((req: IncomingMessage) => boolean) | undefined;
  onHold?: (() => void) | undefined;
  stop(): Promise<void>;
}

async function proxy(target: Registry): Promise<Proxy> {
  const p: Proxy = { host: '', log: [], stop: async () => undefined };
  const server: Server = createServer((req, res) => {
    const rec = { method: req.method ?? '', path: req.url ?? '', bytes: 0 };
    p.log.push(rec);
    if (p.holdAtStart?.(req)) {
      p.holdAtStart = undefined;
      p.onHold?.();
      return;
    }
    const up = httpRequest({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.on('close', () => {
      if (!req.complete) up.destroy();
    });
    req.on('data', (c: Buffer) => {
      rec.bytes += c.length;
      if (p.hold?.(req, rec.bytes)) {
        p.hold = undefined;
        req.unpipe(up);
        req.pause();
        p.onHold?.();
      }
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const addr = server.address();
  p.host = `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  p.stop = () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  return p;
}

const uploadsOf = (log: Proxy['log'], digest: string) => log.filter((r) => r.method === 'PUT' && r.path.includes(`digest=${encodeURIComponent(digest)}`));

test('killed during the big layer, re-run: completes, and the blobs that had arrived are not sent again', async () => {
  if (!have()) return;
  const dst = await startRegistry();
  const px = await proxy(dst);
  try {
    const [config, base, mid, big] = [image.images[0]!.configDigest, ...image.images[0]!.layers.map((l) => l.digest)] as [string, string, string, string];
    px.hold = (req, bytes) => req.method === 'PUT' && (req.url ?? '').includes(encodeURIComponent(big)) && bytes > 1_000_000;
    const child: ChildProcess = spawn('node', [...cli, '--quiet', '--jobs', '1', '--src-tls-verify=false', '--dest-tls-verify=false', `${src.host}/team/app:v1`, px.host], { env: env(), stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('close', (_code, signal) => resolve(signal)));
    const held = new Promise<void>((resolve) => { px.onHold = resolve; });
    const first = await Promise.race([held.then(() => 'held' as const), exited.then(() => 'exited' as const)]);
    assert.is(first, 'held', 'the sync reached the big layer');
    child.kill('SIGKILL');
    assert.is(await exited, 'SIGKILL');
    for (const d of [config, base, mid]) assert.is(uploadsOf(px.log, d).length, 1, `${d} went up in the first run`);

    px.log.length = 0;
    const r = summary(await sync(['--json', '--jobs', '1', `${src.host}/team/app:v1`, px.host]));
    const img = r.images[0]!;
    assert.is(img.digest, image.digest);
    assert.equal(img.blobs, { sent: 1, mounted: 0, skipped: 3 });
    assert.is(img.bytesSent, image.images[0]!.layers[2]!.size);
    for (const d of [config, base, mid]) assert.is(uploadsOf(px.log, d).length, 0, `${d} not sent again`);
    const bigPut = uploadsOf(px.log, big);
    assert.is(bigPut.length, 1);
    assert.is(bigPut[0]!.bytes, image.images[0]!.layers[2]!.size);
    const sent = px.log.reduce((n, x) => n + x.bytes, 0);
    assert.is(sent, image.images[0]!.layers[2]!.size + image.images[0]!.manifest.length, 'only the big layer and the manifest went up');
  } finally {
    await px.stop();
    await dst.stop();
  }
});

test('killed between chunks of the big layer, re-run with --chunk-size: the upload session continues where it stopped', async () => {
  if (!have()) return;
  const dst = await startRegistry();
  const px = await proxy(dst);
  const chunk = 1024 * 1024;
  try {
    const big = image.images[0]!.layers[2]!;
    let patches = 0;
    // config, base and mid take one PATCH each; hold the big layer's seventh chunk unsent.
    px.holdAtStart = (req) => req.method === 'PATCH' && ++patches === 3 + 7;
    const args = ['--quiet', '--jobs', '1', '--chunk-size', '1M', '--src-tls-verify=false', '--dest-tls-verify=false', `${src.host}/team/app:v1`, `${px.host}/chunks/app`];
    const child: ChildProcess = spawn('node', [...cli, ...args], { env: env(), stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('close', (_code, signal) => resolve(signal)));
    const held = new Promise<void>((resolve) => { px.onHold = resolve; });
    assert.is(await Promise.race([held.then(() => 'held' as const), exited.then(() => 'exited' as const)]), 'held');
    child.kill('SIGKILL');
    await exited;

    px.log.length = 0;
    const r = summary(await sync(['--json', '--jobs', '1', '--chunk-size', '1M', `${src.host}/team/app:v1`, `${px.host}/chunks/app`]));
    assert.is(r.images[0]!.digest, image.digest);
    assert.equal(r.images[0]!.blobs, { sent: 1, mounted: 0, skipped: 3 });
    const resent = px.log.filter((x) => x.method === 'PATCH').reduce((n, x) => n + x.bytes, 0);
    assert.is(resent, big.size - 6 * chunk, 'only what the session lacked');
    assert.is(r.images[0]!.bytesSent, big.size - 6 * chunk);
    assert.is(px.log.filter((x) => x.method === 'POST').length, 0, 'no new upload session');
  } finally {
    await px.stop();
    await dst.stop();
  }
});

test('Basic auth on both sides: --src-creds and --dest-creds; missing or wrong credentials give one line without secrets', async () => {
  if (!have()) return;
  const [authSrc, dst] = await Promise.all([startRegistry({ auth: { username: 'alice', password: SECRET } }), startRegistry({ auth: { username: 'bob', password: SECRET } })]);
  try {
    await pushImage(sibling.dir, authSrc.port, 'team/sibling', 'v1', { auth: { username: 'alice', password: SECRET } });
    const from = `${authSrc.host}/team/sibling:v1`;
    const none = oneLineError(await sync([from, dst.host]));
    assert.match(none, new RegExp(`registry ${authSrc.host} requires authentication \\(Basic\\) and no credentials were found \\(use --src-creds,`));
    const noDest = oneLineError(await sync(['--src-creds', `alice:${SECRET}`, from, dst.host]));
    assert.match(noDest, new RegExp(`registry ${dst.host} requires authentication \\(Basic\\) and no credentials were found \\(use --dest-creds,`));
    const wrong = oneLineError(await sync(['--src-creds', `alice:${SECRET}`, '--dest-creds', `bob:${SECRET}x`, from, dst.host]));
    assert.match(wrong, /HTTP 401 Unauthorized: the registry refused the credentials from --dest-creds/);
    const creds = ['--src-creds', `alice:${SECRET}`, '--dest-creds', `bob:${SECRET}`];

    const dry = await sync(['--dry-run', ...creds, from, dst.host]);
    assert.is(dry.code, 0, dry.stderr);
    assert.match(dry.stdout.toString(), /would send 3 blobs/);
    assert.match(dry.stdout.toString(), /push  manifest sha256:[0-9a-f]{64} {2}\S+ \S+ {2}as v1/);

    const r = summary(await sync(['--json', ...creds, from, `${dst.host}/mirror/sibling`]));
    assert.equal(r.images.map((i) => [i.source, i.destination, i.sourceDigest, i.digest]), [[from, `${dst.host}/mirror/sibling:v1`, sibling.digest, sibling.digest]]);
    assert.equal(r.totals.blobs, { sent: 3, mounted: 0, skipped: 0 });
    assert.not.ok(r.images[0]!.upToDate);
  } finally {
    await Promise.all([authSrc.stop(), dst.stop()]);
  }
});

test('TLS destination: its CA via --dest-cert-file (the streamed upload verifies it too); without it, one line', async () => {
  if (!have()) return;
  const dst = await startRegistry({ tls: true });
  try {
    const bad = await run('node', [...cli, '--src-tls-verify=false', `${src.host}/team/sibling:v1`, dst.host], { env: env() });
    oneLineError(bad);
    assert.match(bad.stderr, new RegExp(`cannot reach registry ${dst.host}: .*certificate`));
    const ok = await run('node', [...cli, '--json', '--src-tls-verify=false', '--dest-cert-file', dst.certPath!, `${src.host}/team/sibling:v1`, dst.host], { env: env() });
    const r = summary(ok);
    assert.is(r.images[0]!.digest, sibling.digest);
    assert.is(r.totals.blobs.sent, 3);
  } finally {
    await dst.stop();
  }
});

test('Bearer tokens on the destination: push scope, and one token for a mount across two repositories', async () => {
  if (!have()) return;
  const tokens = await startTokenServer({ users: { alice: SECRET } });
  const dst = await startRegistry({ extraConfig: tokens.registryAuthConfig() });
  try {
    const list = join(tmp.path, 'list.txt');
    writeFileSync(list, `${src.host}/team/app@${image.digest}\n${src.host}/team/sibling:v1@${sibling.digest}\n`);
    const r = summary(await sync(['--json', '--dest-creds', `alice:${SECRET}`, '--list', list, `${dst.host}/m`]));
    assert.equal(r.images.map((i) => i.digest), [image.digest, sibling.digest]);
    const base = sibling.images[0]!.layers[0]!.digest;
    assert.equal(r.images[1]!.blobList.find((b) => b.digest === base)?.action, 'mount');
    assert.is(r.images[1]!.blobList.find((b) => b.digest === base)?.from, 'm/team/app');
    const scopes = tokens.requests.map((q) => q.scopes.join(' '));
    assert.ok(scopes.includes('repository:m/team/app:pull,push'), scopes.join(' | '));
    assert.ok(scopes.includes('repository:m/team/sibling:pull,push repository:m/team/app:pull'), scopes.join(' | '));
    assert.ok(tokens.requests.every((q) => q.user === 'alice' && q.status === 200));

    const anon = oneLineError(await sync([`${src.host}/team/sibling:v1`, `${dst.host}/anon`]));
    assert.match(anon, /401|refused|credentials/);
  } finally {
    await dst.stop();
    await tokens.stop();
  }
});

test('a destination that is down, bad arguments: one-line errors', async () => {
  if (!have()) return;
  const dead = `127.0.0.1:${await freePort()}`;
  const down = oneLineError(await sync([`${src.host}/team/app:v1`, dead]));
  assert.match(down, new RegExp(`^error: cannot reach registry ${dead}: .*ECONNREFUSED`));
  const missing = oneLineError(await sync([`${src.host}/team/nope:v1`, dead]));
  assert.match(missing, /manifest 127\.0\.0\.1:\d+\/team\/nope:v1: not found/);

  const usage = await run('node', [...cli, '--list', 'x.txt', 'a.example/b', 'c.example'], { env: env() });
  assert.is(usage.code, 2);
  assert.match(usage.stderr, /^error: with --list give only DEST/);
  const noList = await run('node', [...cli, '--list', join(tmp.path, 'missing.txt'), dead], { env: env() });
  assert.match(noList.stderr, /^error: --list .*missing.txt: no such file\n$/);
  const badDest = await run('node', [...cli, `${src.host}/team/app:v1`, 'mirror/app'], { env: env() });
  assert.match(badDest.stderr, /^error: invalid destination 'mirror\/app': it must start with a registry host/);
  const both = await run('node', [...cli, '--all-platforms', '--platform', 'linux/amd64', 'a.example/b:1', 'c.example'], { env: env() });
  assert.is(both.code, 2);
  assert.match(both.stderr, /either --all-platforms or --platform/);
});

test.run();
