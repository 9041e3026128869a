// Repeatable options through the shipped CLI: every command's --help is walked to find the
// options that may be given more than once ([array] in the Options section); each is given twice,
// before the positionals, after them, as --opt=value, and before `--`. Parsing must take every
// value and leave the positionals alone: values that are URLs are seen arriving at a loopback
// server that records each request, values that are only validated are replaced by a bad one in
// each position (the error must name it), and the positional is seen in the requests too.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatPublicKey, generateKeyPair } from '../lib/mirror/index.js';
import { startServer, type TestServer } from './helpers/http-servers.js';
import { run, type RunResult } from './helpers/run.js';
import { CLI_PATH } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const env = { PATH: process.env.PATH, HOME: '/nonexistent', XDG_CONFIG_HOME: '/nonexistent', NIX_CURL_FLAGS: '--retry 0' };
const cli = (store: string, args: string[]): Promise<RunResult> => run(process.execPath, [CLI_PATH, '--store', store, ...args], { env });

/** Help text of a command, with its subcommands (from "Commands:") and its [array] options. */
async function helpOf(words: string[]): Promise<{ subcommands: string[]; repeatable: string[] }> {
  const r = await run(process.execPath, [CLI_PATH, ...words, '--help'], { env });
  assert.is(r.code, 0, r.stderr);
  const blocks = r.stdout.toString().split(/\n\n/);
  const prefix = ['fetch-image', ...words].join(' ') + ' ';
  const commands = blocks.find((b) => b.startsWith('Commands:'));
  const subcommands = (commands ?? '').split('\n').slice(1).map((l) => l.trim())
    .filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length).split(/\s/)[0]!)
    .filter((w) => w !== '' && !w.startsWith('<') && !w.startsWith('['));
  const options = blocks.find((b) => b.startsWith('Options:')) ?? '';
  // One entry per option: its first line starts with the flag, wrapped lines continue it.
  const entries: string[] = [];
  for (const line of options.split('\n').slice(1)) {
    if (/^\s+(-\w, )?--[\w-]+/.test(line)) entries.push(line);
    else if (entries.length) entries[entries.length - 1] += ` ${line.trim()}`;
  }
  const repeatable = entries.filter((e) => /\[array\]/.test(e)).map((e) => /--([\w-]+)/.exec(e)![1]!);
  return { subcommands, repeatable };
}

/** Every leaf command with its repeatable options; '' is the default command (fetch-image REF). */
async function repeatableOptions(): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  const walk = async (words: string[]): Promise<void> => {
    const h = await helpOf(words);
    if (h.subcommands.length === 0 || words.length === 0) found.set(words.join(' '), h.repeatable);
    for (const s of h.subcommands) await walk([...words, s]);
  };
  await walk([]);
  return found;
}

interface Probe {
  /** The command's positionals, in order. */
  positionals: string[];
  /** Other options the probe needs (given after the command words). */
  fixed: string[];
  /** Asserts the positionals were taken as positionals (a request for them, or the output). */
  positionalsSeen(srv: TestServer, r: RunResult): void;
  /** Prepares the command's store before each run. */
  setup?: (store: string) => Promise<void>;
}

/** A registered path whose content is gone: what `store verify --repair` asks the substituters for. */
async function brokenPath(store: string): Promise<void> {
  if (existsSync(join(store, 'broken'))) return;
  const src = join(store, '..', `${store.split('/').pop()}-src`);
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'file'), 'probe\n');
  const added = await cli(store, ['store', 'add', src]);
  assert.is(added.code, 0, added.stderr);
  const path = added.stdout.toString().trim();
  rmSync(join(store, path), { recursive: true, force: true });
  writeFileSync(join(store, 'broken'), path);
}

/** How each repeatable option is given and seen: URLs by their requests, others by a bad value's error. */
interface OptionCase {
  good: [string, string];
  /** Path prefixes that a request must start with, one per value. */
  requestPrefixes?: [string, string];
  /** A value that the command refuses by name (for options seen only through validation). */
  bad?: string;
}

const HASH = '0000000000000000000000000000000000000000000000000000';
const PATH_HASH = 'x0dpr9yz5h0fk5c5lpj7zzqjbdh3w8cz';

function probes(srv: TestServer): Record<string, Probe> {
  const registry = `${srv.host}:${srv.port}`;
  const requested = (path: string) => (s: TestServer, r: RunResult) =>
    assert.ok(s.requests.some((q) => q.url.startsWith(path)), `no request for ${path} (exit ${r.code}: ${r.stderr.trim()}); got ${s.requests.map((q) => q.url).join(' ')}`);
  const pull: Probe = {
    positionals: [`${registry}/probe/app:v1`], fixed: ['--tls-verify=false', '--sha256', HASH], positionalsSeen: requested('/v2/probe/app/manifests/v1'),
  };
  return {
    '': pull,
    pull,
    url: { positionals: [srv.url('/probe/file.txt')], fixed: ['--sha256', HASH], positionalsSeen: requested('/probe/file.txt') },
    'mirror import': { positionals: [`/nix/store/${PATH_HASH}-probe`], fixed: ['--from', srv.url('/cache')], positionalsSeen: requested(`/cache/${PATH_HASH}.narinfo`) },
    'mirror substitute': { positionals: [`/nix/store/${PATH_HASH}-probe`], fixed: [], positionalsSeen: requested(`/sub-a/${PATH_HASH}.narinfo`) },
    'mirror sync': {
      positionals: [`${registry}/probe/app:v1`, `${registry}/dest/app`], fixed: ['--dry-run', '--src-tls-verify=false', '--dest-tls-verify=false'],
      positionalsSeen: requested('/v2/probe/app/manifests/v1'),
    },
    audit: {
      positionals: [], fixed: ['--json', '--checks', 'store'],
      // Each pin file holds one pin, and both options are given twice: all four taken = four origins.
      positionalsSeen: (_s, r) => {
        assert.is(r.code, 0, r.stderr);
        const origins = new Set((JSON.parse(r.stdout.toString()) as { results: { origin: string }[] }).results.map((x) => x.origin.replace(/:\d+$/, '')));
        assert.is(origins.size, 4, [...origins].join(' '));
      },
    },
    lock: { positionals: [srv.url('/probe/lock.txt')], fixed: ['--lock', 'probe.lock.json'], positionalsSeen: requested('/probe/lock.txt') },
    'store verify': {
      positionals: [], fixed: ['--repair'], setup: brokenPath,
      // Unrepairable (the substituters have nothing): exit 3 naming the path, after asking both.
      positionalsSeen: (_s, r) => assert.is(r.code, 3, r.stderr),
    },
    'mirror config': {
      positionals: [], fixed: ['--json'],
      positionalsSeen: (_s, r) => assert.is(r.code, 0, r.stderr),
    },
  };
}

function optionCases(srv: TestServer, dir: string): Record<string, OptionCase> {
  const key = (name: string) => formatPublicKey(generateKeyPair(name).publicKey);
  return {
    substituter: { good: [srv.url('/sub-a'), srv.url('/sub-b')], requestPrefixes: ['/sub-a/', '/sub-b/'] },
    'hashed-mirror': { good: [srv.url('/hm-a'), srv.url('/hm-b')], requestPrefixes: ['/hm-a/sha256/', '/hm-b/sha256/'] },
    'trusted-key': { good: [key('probe-a-1'), key('probe-b-1')], bad: 'not-a-key' },
    platform: { good: ['linux/amd64', 'linux/arm64'], bad: 'no-such-platform' },
    spec: { good: [join(dir, 'spec-a.json'), join(dir, 'spec-b.json')], bad: join(dir, 'no-such-spec.json') },
    nix: { good: [join(dir, 'pins-a.nix'), join(dir, 'pins-b.nix')], bad: join(dir, 'no-such-pins.nix') },
    'prefetch-json': { good: [join(dir, 'pin-a.json'), join(dir, 'pin-b.json')], bad: join(dir, 'no-such-pin.json') },
  };
}

/** Pin files for `audit --nix` / `--prefetch-json`, one pin each (audited with --checks store: no network). */
function writePinFiles(dir: string): void {
  const digest = `sha256:${'0'.repeat(64)}`;
  for (const n of ['a', 'b']) {
    writeFileSync(join(dir, `pins-${n}.nix`), `{ pullImage }: { ${n} = pullImage { imageName = "probe/${n}"; imageDigest = "${digest}"; sha256 = "${HASH}"; }; }\n`);
    writeFileSync(join(dir, `spec-${n}.json`), JSON.stringify({ name: `probe-${n}` }));
    writeFileSync(join(dir, `pin-${n}.json`), JSON.stringify({ imageName: `probe/${n}`, imageDigest: digest, sha256: HASH }));
  }
}

type Placement = 'before' | 'after' | 'equals' | 'dashdash';

/** The command line with the options placed as asked relative to the positionals. */
function commandLine(words: string[], probe: Probe, opts: Array<[string, string]>, placement: Placement): string[] {
  const spaced = opts.flatMap(([o, v]) => [`--${o}`, v]);
  switch (placement) {
    case 'before': return [...words, ...spaced, ...probe.fixed, ...probe.positionals];
    case 'after': return [...words, ...probe.positionals, ...probe.fixed, ...spaced];
    case 'equals': return [...words, ...probe.positionals, ...opts.map(([o, v]) => `--${o}=${v}`), ...probe.fixed];
    case 'dashdash': return [...words, ...probe.fixed, ...spaced, '--', ...probe.positionals];
  }
}

test('every repeatable option takes one value per occurrence, before or after the positionals', async () => {
  const t = tempDir();
  // A registry that answers its ping, caches that exist, and nothing else: every command fails
  // soon after parsing, having asked for what it was given.
  const srv = await startServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/') res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    else if (url.endsWith('/nix-cache-info')) res.writeHead(200, { 'content-type': 'text/x-nix-cache-info' }).end('StoreDir: /nix/store\n');
    else res.writeHead(404).end();
  });
  try {
    const found = await repeatableOptions();
    writePinFiles(t.path);
    const table = probes(srv);
    const cases = optionCases(srv, t.path);
    const covered: string[] = [];
    for (const [command, options] of found) {
      if (!options.length) continue;
      const probe = table[command];
      assert.ok(probe, `'${command || 'fetch-image REF'}' has repeatable options (${options.join(', ')}) but no probe in this test`);
      for (const o of options) assert.ok(cases[o], `no case for the repeatable option --${o} (of '${command}')`);
      const words = command === '' ? [] : command.split(' ');
      const store = join(t.path, command.replace(/ /g, '-') || 'default');
      const placements: Placement[] = probe.positionals.length ? ['before', 'after', 'equals', 'dashdash'] : ['before', 'equals'];
      for (const placement of placements) {
        await probe.setup?.(store);
        srv.requests.length = 0;
        const given = options.flatMap((o) => cases[o]!.good.map((v): [string, string] => [o, v]));
        const args = commandLine(words, probe, given, placement);
        const started = Date.now();
        const r = await cli(store, args);
        if (process.env.CLI_OPTIONS_TIMING) process.stderr.write(`${Date.now() - started} ms: ${args.join(' ')}\n`);
        const where = `${args.join(' ')} (${placement})`;
        assert.not.match(r.stderr, /Unknown argument|Not enough|Missing required/, `${where}: ${r.stderr}`);
        probe.positionalsSeen(srv, r);
        for (const o of options) {
          const c = cases[o]!;
          if (c.requestPrefixes && command !== 'mirror config') {
            for (const p of c.requestPrefixes) assert.ok(srv.requests.some((q) => q.url.startsWith(p)), `${where}: no request under ${p}; got ${srv.requests.map((q) => q.url).join(' ')}`);
          }
          if (command === 'mirror config') {
            const cfg = JSON.parse(r.stdout.toString()) as { substituters: string[]; trustedPublicKeys: string[] };
            assert.equal(o === 'substituter' ? cfg.substituters : cfg.trustedPublicKeys, c.good, where);
          }
        }
        if (placement !== 'before') continue;
        // Options seen only by validation: a bad value in either occurrence is named.
        for (const o of options) {
          const c = cases[o]!;
          if (!c.bad) continue;
          for (const slot of [0, 1]) {
            const values = [...c.good];
            values[slot] = c.bad;
            const bad = commandLine(words, probe, values.map((v): [string, string] => [o, v]), placement);
            const rb = await cli(store, bad);
            assert.is(rb.code, 2, `${bad.join(' ')}: ${rb.stderr}`);
            assert.match(rb.stderr, `'${c.bad}'`, `${bad.join(' ')}: the error should name the bad value: ${rb.stderr}`);
          }
        }
      }
      covered.push(`${command || 'fetch-image REF'}: ${options.join(', ')}`);
    }
    for (const expected of ['url: substituter, trusted-key, hashed-mirror', 'mirror import: trusted-key', 'mirror sync: platform']) {
      assert.ok(covered.includes(expected), `expected '${expected}' among ${covered.join('; ')}`);
    }
  } finally {
    await srv.close();
    t.remove();
  }
});

test('the issue\'s own command lines parse: mirror import, url --hashed-mirror, fetch-image --substituter … REF --sha256', async () => {
  const t = tempDir();
  const srv = await startServer((req, res) => {
    if (req.url === '/v2/') res.writeHead(200).end('{}');
    else if ((req.url ?? '').endsWith('/nix-cache-info')) res.writeHead(200).end('StoreDir: /nix/store\n');
    else res.writeHead(404).end();
  });
  try {
    const store = join(t.path, 's');
    const k = formatPublicKey(generateKeyPair('issue-1').publicKey);
    const imp = await cli(store, ['mirror', 'import', '--from', srv.url('/c'), '--trusted-key', k, `/nix/store/${PATH_HASH}-x`]);
    assert.match(imp.stderr, `has no ${PATH_HASH}.narinfo`, imp.stderr);
    assert.ok(srv.requests.some((q) => q.url === `/c/${PATH_HASH}.narinfo`), srv.requests.map((q) => q.url).join(' '));

    srv.requests.length = 0;
    const url = await cli(store, ['url', '--hashed-mirror', srv.url('/m'), srv.url('/f.txt'), '--sha256', HASH]);
    assert.is(url.code, 1, url.stderr);
    assert.equal(srv.requests.map((q) => q.url), [`/m/sha256/${'0'.repeat(64)}`, '/f.txt']);

    srv.requests.length = 0;
    const pull = await cli(store, ['--substituter', srv.url('/s'), '--trusted-key', k, `${srv.host}:${srv.port}/team/app:v1`, '--sha256', HASH, '--tls-verify=false']);
    assert.is(pull.code, 1, pull.stderr);
    assert.ok(srv.requests.some((q) => q.url.startsWith('/s/')), srv.requests.map((q) => q.url).join(' '));
    assert.ok(srv.requests.some((q) => q.url === '/v2/team/app/manifests/v1'), srv.requests.map((q) => q.url).join(' '));
  } finally {
    await srv.close();
    t.remove();
  }
});

test.run();
