// Credentials through the real CLI: they go only to the origin they were given for (never to a
// redirect's other host, a manifest's foreign layer URLs, or a server when meant for the proxy),
// and no form of them — curl flags, proxy URL, netrc, --creds — ever lands in the store, in an
// export, a bundle, what `mirror serve` answers, or anything a command prints.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { Hash } from '../lib/hash/index.js';
import { fetchUrlRecipe } from '../lib/builders/fetch-url.js';
import { splitSecretCurlOpts } from '../lib/fetch/index.js';
import { recipeFileName, serializeRecipe } from '../lib/recipe/index.js';
import { LocalStore, makeTextPath } from '../lib/store/index.js';
import { startBadRegistry, startBlobHost, type BadRegistry } from '../store-fixtures/bad-registry/index.js';
import { startServer, type TestServer } from './helpers/http-servers.js';
import { layerTar } from './helpers/layer-tar.js';
import { havePeer } from './helpers/peers.js';
import { startTinyproxy } from './helpers/proxies.js';
import { run, type RunResult } from './helpers/run.js';
import { CLI_PATH } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const basic = (userPass: string): string => `Basic ${Buffer.from(userPass).toString('base64')}`;
const CRED_HEADERS = ['authorization', 'cookie', 'proxy-authorization'] as const;

const fi = (store: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> =>
  run('node', [CLI_PATH, '--store', store, ...args], { env: { PATH: process.env.PATH, HOME: '/nonexistent', ...env } });

test('a fetch without credentials keeps the recipe path it had; one with them cannot be made into a recipe', () => {
  const curlOpts = "-k  -H 'X-A: 1' -x http://proxy:3128";
  const spec = { url: 'https://example.org/f.tar.gz', curlOpts: splitSecretCurlOpts(curlOpts).stored, hash: Hash.of('sha256', 'x') };
  const recipe = fetchUrlRecipe(spec);
  // Computed by the code before credentials were split off (main at ee3ba23).
  assert.is(makeTextPath(recipeFileName(recipe), serializeRecipe(recipe), []), '/nix/store/rfdq5rf9l1s8h91z15pg3v855fzwwynb-f.tar.gz.recipe.json');
  for (const secret of ['-u a:b', "-H 'cookie: x=1'", '-x http://u:p@proxy:1 --retry 1', '-U u:p']) {
    assert.throws(() => fetchUrlRecipe({ ...spec, curlOpts: secret }), /curlOpts with credentials would be stored in the recipe/, secret);
  }
});

/** A server on 127.0.0.2 (another origin than 127.0.0.1) that records every header it receives. */
async function otherHost(body: Buffer): Promise<TestServer> {
  return startServer((req, res) => {
    // Asked as a binary cache, it has nothing.
    const cacheFile = /(\.narinfo|nix-cache-info)$/.test(req.url ?? '');
    res.writeHead(cacheFile ? 404 : 200, { 'content-length': String(cacheFile ? 0 : body.length) });
    res.end(cacheFile ? undefined : body);
  }, { host: '127.0.0.2' });
}

function credentialHeaders(h: IncomingHttpHeaders): string[] {
  return CRED_HEADERS.filter((k) => h[k] !== undefined).map((k) => `${k}: ${String(h[k])}`);
}

test('url: curl-flag and netrc credentials reach the origin only, never the host it redirects to nor a binary cache', async () => {
  const t = tempDir();
  const body = Buffer.from('redirected payload\n');
  const other = await otherHost(body);
  const origin = await startServer((req, res) => {
    res.writeHead(302, { location: other.url(`/file${req.url}`), 'content-length': '0' });
    res.end();
  });
  try {
    writeFileSync(join(t.path, 'netrc'), 'default login nora password netrc-default-secret\n');
    mkdirSync(join(t.path, 'home'));
    writeFileSync(join(t.path, 'home', '.netrc'), `machine 127.0.0.1 login hana password home-secret\nmachine 127.0.0.2 login hana password never-sent\n`);
    const forms: Array<{ what: string; args: string[]; env?: NodeJS.ProcessEnv; atOrigin: RegExp }> = [
      { what: '-u', args: ['--curl-opts=-u alice:u-secret'], atOrigin: /^authorization: Basic / },
      { what: '-H Authorization', args: ["--curl-opts=-H 'Authorization: Bearer h-secret'"], atOrigin: /^authorization: Bearer h-secret$/ },
      { what: '-H Cookie', args: ["--curl-opts=-H 'Cookie: session=c-secret'"], atOrigin: /^cookie: session=c-secret$/ },
      { what: 'NIX_CURL_FLAGS -u', args: [], env: { NIX_CURL_FLAGS: '-u env:e-secret' }, atOrigin: /^authorization: Basic / },
      { what: 'netrc default entry', args: ['--netrc-file', join(t.path, 'netrc')], atOrigin: /^authorization: Basic / },
      { what: '~/.netrc', args: [], env: { HOME: join(t.path, 'home') }, atOrigin: new RegExp(`^authorization: ${basic('hana:home-secret')}$`) },
    ];
    for (const [i, form] of forms.entries()) {
      const store = join(t.path, `s${i}`);
      const seenAtOrigin = origin.requests.length;
      const seenAtOther = other.requests.length;
      const r = await fi(store, ['url', origin.url(`/${i}`), '--sha256', Hash.of('sha256', body).sri, '--substituter', other.origin, ...form.args], form.env);
      assert.is(r.code, 0, `${form.what}: ${r.stderr}`);
      const atOrigin = origin.requests.slice(seenAtOrigin).flatMap((q) => credentialHeaders(q.headers));
      assert.ok(atOrigin.length > 0 && atOrigin.every((h) => form.atOrigin.test(h)), `${form.what}: the origin got its credentials: ${atOrigin.join('; ')}`);
      const atOther = other.requests.slice(seenAtOther);
      assert.ok(atOther.some((q) => q.url.startsWith('/file/')), `${form.what}: the redirect was followed`);
      assert.ok(atOther.some((q) => q.url.endsWith('.narinfo')), `${form.what}: the binary cache was asked first`);
      assert.equal(atOther.flatMap((q) => credentialHeaders(q.headers)), [], `${form.what}: nothing reached the other host`);
    }

    // Proxy-Authorization is for a proxy: with none in use, no server sees it.
    const r = await fi(join(t.path, 'p'), ['url', origin.url('/p'), "--curl-opts=-H 'Proxy-Authorization: Basic cHJveHk6c2VjcmV0'"]);
    assert.is(r.code, 0, r.stderr);
    assert.equal([...origin.requests, ...other.requests].filter((q) => q.headers['proxy-authorization'] !== undefined), []);
  } finally {
    await origin.close();
    await other.close();
    t.remove();
  }
});

/** An image whose one layer names a foreign URL (on 127.0.0.2) and is also in the registry. */
function imageWithForeignLayer(reg: BadRegistry, foreignUrl: string, layer: Buffer): void {
  const mediaType = 'application/vnd.oci.image.layer.v1.tar';
  const blob = reg.addBlob(layer, mediaType);
  const config = reg.addBlob(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [blob.digest] }, config: {} }), 'application/vnd.oci.image.config.v1+json');
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config,
    layers: [{ ...blob, urls: [foreignUrl] }],
  });
  reg.addManifest('team/foreign', manifest, 'application/vnd.oci.image.manifest.v1+json', ['v1']);
}

test('pull: curl -u is the registry\'s credentials; no credential reaches foreign layer URLs or a blob redirect', async () => {
  const t = tempDir();
  const reg = await startBadRegistry({ basicAuth: { username: 'dave', password: 'r-secret' } });
  const cdn = await startBlobHost(reg);
  const layer = layerTar('foreign.bin', Buffer.alloc(50_000, 3));
  const foreign = await otherHost(layer);
  try {
    imageWithForeignLayer(reg, foreign.url('/layers/foreign.tar'), layer);
    // Configs come through the registry, whose blobs redirect to another origin.
    reg.faults.redirectBlobs = cdn.url;
    const forms: Array<{ what: string; args: string[]; env?: NodeJS.ProcessEnv }> = [
      { what: '--curl-opts -u and -H Cookie', args: ["--curl-opts=-u dave:r-secret -H 'Cookie: k=cookie-secret'"] },
      { what: 'NIX_CURL_FLAGS -u', args: [], env: { NIX_CURL_FLAGS: '-u dave:r-secret' } },
      { what: '--creds', args: ['--creds', 'dave:r-secret'] },
    ];
    for (const [i, form] of forms.entries()) {
      const r = await fi(join(t.path, `s${i}`), ['--quiet', `${reg.host}/team/foreign:v1`, '--tls-verify=false', ...form.args], form.env);
      assert.is(r.code, 0, `${form.what}: ${r.stderr}`);
      assert.ok(reg.requests.some((q) => q.path.includes('/manifests/') && q.authorization && q.status === 200), `${form.what}: the registry accepted them`);
    }
    assert.ok(foreign.requests.length >= forms.length, 'the layer came from its foreign URL');
    assert.equal(foreign.requests.flatMap((q) => credentialHeaders(q.headers)), [], 'no credentials at the foreign URL');
    assert.ok(cdn.requests.length > 0, 'the config came through the redirect');
    assert.ok(cdn.requests.every((q) => !q.authorization), 'no Authorization or Cookie at the redirect host');
  } finally {
    await foreign.close();
    await cdn.stop();
    await reg.stop();
    t.remove();
  }
});

/** Every file below `dir` (and every symlink's target), as bytes. */
function everyFile(dir: string): Array<{ path: string; bytes: Buffer }> {
  const out: Array<{ path: string; bytes: Buffer }> = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) out.push(...everyFile(p));
    else if (st.isSymbolicLink()) out.push({ path: p, bytes: Buffer.from(readlinkSync(p)) });
    else out.push({ path: p, bytes: readFileSync(p) });
  }
  return out;
}

/** `mirror serve` on a free port: the narinfo and NAR of each path, as a client gets them. */
async function servedAnswers(store: string, paths: readonly string[]): Promise<Buffer[]> {
  const child = spawn('node', [CLI_PATH, '--store', store, 'mirror', 'serve', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const base = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stdout.on('data', (d: Buffer) => {
        text += d.toString();
        const line = /^(http:\/\/\S+)\n/.exec(text);
        if (line) resolve(line[1]!.replace(/\/$/, ''));
      });
      child.once('exit', (code) => reject(new Error(`mirror serve exited ${code}`)));
    });
    const answers: Buffer[] = [];
    for (const p of paths) {
      const hashPart = p.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      const narinfo = await (await fetch(`${base}/${hashPart}.narinfo`)).text();
      answers.push(Buffer.from(narinfo));
      const url = /^URL: (.+)$/m.exec(narinfo)?.[1];
      assert.ok(url, `narinfo of ${p} names its NAR`);
      answers.push(Buffer.from(await (await fetch(`${base}/${url}`)).arrayBuffer()));
    }
    return answers;
  } finally {
    child.kill('SIGTERM');
  }
}

test('secrets never enter the store, an export, a bundle, mirror serve, or any output', async () => {
  const t = tempDir();
  const secrets = {
    user: 'u-secret-7d1', header: 'h-secret-9a2', cookie: 'c-secret-3f4', proxyUrl: 'p-secret-5b6',
    netrc: 'n-secret-2e9', registry: 'r-secret-4a0', wrong: 'w-secret-6d3',
  };
  const proxy = havePeer('tinyproxy') ? await startTinyproxy(t.path, { auth: { user: 'bob', password: secrets.proxyUrl } }) : undefined;
  const wanted: Record<string, string> = {
    '/u': basic(`alice:${secrets.user}`), '/h': `Bearer ${secrets.header}`, '/n': basic(`carol:${secrets.netrc}`),
  };
  const origin = await startServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path.startsWith('/layers/')) {
      res.writeHead(404, { 'content-length': '0' });
      return void res.end();
    }
    const ok = path === '/c' ? req.headers.cookie === `session=${secrets.cookie}` : wanted[path] === undefined || req.headers.authorization === wanted[path];
    const body = Buffer.from(`content of ${path}\n`);
    res.writeHead(ok ? 200 : 401, { 'content-length': String(ok ? body.length : 0) });
    res.end(ok ? body : undefined);
  });
  const reg = await startBadRegistry({ basicAuth: { username: 'dave', password: secrets.registry } });
  const outputs: Array<{ what: string; text: string }> = [];
  try {
    const store = join(t.path, 'store');
    writeFileSync(join(t.path, 'netrc'), `machine 127.0.0.1\n  login carol\n  password ${secrets.netrc}\n`);
    const layer = layerTar('app.bin', Buffer.alloc(20_000, 9));
    // Its foreign URL answers 404: the layer then comes from the registry.
    imageWithForeignLayer(reg, origin.url('/layers/app.tar'), layer);
    const pinOf = (path: string): string => Hash.of('sha256', `content of ${path}\n`).sri;

    const runs: Array<{ what: string; args: string[]; env?: NodeJS.ProcessEnv; code: number }> = [
      { what: 'url -u, prefetch', args: ['url', origin.url('/u'), `--curl-opts=-u alice:${secrets.user}`], code: 0 },
      { what: 'url -H Authorization, --json', args: ['--json', 'url', origin.url('/h'), '--hash', pinOf('/h'), `--curl-opts=-k -H 'Authorization: Bearer ${secrets.header}' --retry 1`], code: 0 },
      { what: 'url -H Cookie', args: ['url', origin.url('/c'), '--sha256', pinOf('/c'), `--curl-opts=-H 'Cookie: session=${secrets.cookie}'`], code: 0 },
      { what: 'url netrc', args: ['url', origin.url('/n'), '--netrc-file', join(t.path, 'netrc')], code: 0 },
      { what: 'url NETRC', args: ['--json', 'url', '--name', 'by-env', origin.url('/n')], env: { NETRC: join(t.path, 'netrc') }, code: 0 },
      { what: 'url -u, hash mismatch', args: ['url', origin.url('/u'), '--sha256', pinOf('/other'), `--curl-opts=-u alice:${secrets.user}`], code: 102 },
      { what: 'url -u, refused', args: ['--json', 'url', origin.url('/u'), '--name', 'refused', `--curl-opts=-u alice:${secrets.wrong}`], code: 1 },
      { what: 'url, netrc file missing', args: ['url', origin.url('/n'), '--netrc-file', join(t.path, 'no-such-netrc')], code: 2 },
      { what: 'url --user=…', args: ['url', origin.url('/u'), `--curl-opts=--user=alice:${secrets.user}`], code: 2 },
      { what: 'URL with credentials', args: ['url', `http://alice:${secrets.user}@127.0.0.1:${origin.port}/u`], code: 2 },
      { what: 'pull --creds, prefetch --json', args: ['--json', `${reg.host}/team/foreign:v1`, '--tls-verify=false', '--creds', `dave:${secrets.registry}`], code: 0 },
      { what: 'pull curl -u', args: [`${reg.host}/team/foreign:v1`, '--tls-verify=false', '--final-image-tag', 'curl', `--curl-opts=-u dave:${secrets.registry}`], code: 0 },
      { what: 'pull netrc', args: [`${reg.host}/team/foreign:v1`, '--tls-verify=false', '--final-image-tag', 'netrc', '--netrc-file', join(t.path, 'netrc-reg')], code: 0 },
      { what: 'pull --creds, refused', args: ['--json', `${reg.host}/team/foreign:v1`, '--tls-verify=false', '--final-image-tag', 'refused', '--creds', `dave:${secrets.wrong}`], code: 1 },
    ];
    writeFileSync(join(t.path, 'netrc-reg'), `machine 127.0.0.1 login dave password ${secrets.registry}\n`);
    if (proxy) {
      const hostPort = proxy.address.replace('http://', '');
      runs.push(
        { what: 'url via proxy URL with userinfo', args: ['url', origin.url('/p1'), `--curl-opts=-x http://bob:${secrets.proxyUrl}@${hostPort}`], code: 0 },
        { what: 'url via --proxy-user', args: ['url', origin.url('/p2'), `--curl-opts=-x ${proxy.address} --proxy-user bob:${secrets.proxyUrl}`], code: 0 },
        { what: 'url via -H Proxy-Authorization', args: ['url', origin.url('/p3'), `--curl-opts=-x ${proxy.address} -H 'Proxy-Authorization: ${basic(`bob:${secrets.proxyUrl}`)}'`], code: 0 },
      );
    }
    for (const r of runs) {
      const got = await fi(store, r.args, r.env);
      assert.is(got.code, r.code, `${r.what}: ${got.stderr}`);
      outputs.push({ what: `${r.what} (stdout)`, text: got.stdout.toString() }, { what: `${r.what} (stderr)`, text: got.stderr });
    }
    if (proxy) {
      assert.ok(origin.requests.filter((q) => /^\/p\d$/.test(q.url)).length >= 3, 'the proxied fetches reached the origin');
      assert.equal(origin.requests.filter((q) => q.headers['proxy-authorization'] !== undefined), [], 'Proxy-Authorization stayed with the proxy');
    }
    const credsError = outputs.find((o) => o.what === 'URL with credentials (stderr)')!.text;
    assert.match(credsError, /--curl-opts '-u USER:PASSWORD' or a netrc file/);

    // Everything that is in the store, as files, as an export, a bundle and served.
    const s = new LocalStore({ root: store });
    const paths = s.list().map((i) => i.path);
    const recipes = paths.filter((p) => p.endsWith('.recipe.json'));
    assert.ok(recipes.length >= 6, `recipes registered: ${recipes.join(' ')}`);
    const exported = await fi(store, ['mirror', 'export', '--to', join(t.path, 'cache'), ...paths]);
    assert.is(exported.code, 0, exported.stderr);
    const bundled = await fi(store, ['mirror', 'bundle', '--to', join(t.path, 'all.closure'), ...paths]);
    assert.is(bundled.code, 0, bundled.stderr);
    const served = await servedAnswers(store, paths);

    const haystacks = [
      ...everyFile(store).map((f) => ({ what: f.path, bytes: f.bytes })),
      ...everyFile(join(t.path, 'cache')).map((f) => ({ what: f.path, bytes: f.bytes })),
      { what: 'bundle', bytes: readFileSync(join(t.path, 'all.closure')) },
      ...served.map((bytes, i) => ({ what: `served answer ${i}`, bytes })),
      ...outputs.map((o) => ({ what: o.what, bytes: Buffer.from(o.text) })),
      ...[exported, bundled].map((r, i) => ({ what: `mirror output ${i}`, bytes: Buffer.concat([r.stdout, Buffer.from(r.stderr)]) })),
    ];
    const needles = Object.values(secrets).flatMap((v) => [v, Buffer.from(`alice:${v}`).toString('base64'), Buffer.from(`dave:${v}`).toString('base64'),
      Buffer.from(`carol:${v}`).toString('base64'), Buffer.from(`bob:${v}`).toString('base64')]);
    const hits = haystacks.flatMap((h) => needles.filter((n) => h.bytes.includes(n)).map((n) => `${h.what}: ${n}`));
    assert.equal(hits, [], 'no secret anywhere');
    // The recipe of a fetch with credentials keeps what is not secret.
    const hRecipe = recipes.map((p) => readFileSync(s.realPath(p), 'utf8')).find((text) => text.includes('/h"'));
    assert.match(hRecipe ?? '', /"curlOpts":"-k --retry 1"/);
  } finally {
    await proxy?.stop();
    await origin.close();
    await reg.stop();
    t.remove();
  }
});

test.run();
