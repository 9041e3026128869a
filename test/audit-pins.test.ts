import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  LockFileError, emptyLock, parseLock, readNixPins, readPrefetchDockerJson, serializeLock, withPin, type ImagePin,
} from '../lib/audit/index.js';
import { havePeer } from './helpers/peers.js';
import { tempDir } from './helpers/tmp.js';

const D0 = `sha256:${'0'.repeat(64)}`;
const D1 = `sha256:${'1'.repeat(64)}`;

const PINS_NIX = `{ pullImage, dockerTools ? { inherit pullImage; } }:
let v = "1.2"; in {
  # a comment that mentions pullImage { imageName = "commented-out"; }
  a = pullImage {
    imageName = "nixos/nix"; /* inline comment */ imageDigest = "${D0}";
    sha256 = "0h5fmhk3pyvx8s0ppfxl1nxsqyb1rxv1lm6qfgzy1b0wbh8hn3vk";
    finalImageName = "nix"; finalImageTag = ''
      2.2.1
    '';
    tlsVerify = false;
  };
  b = dockerTools.pullImage {
    imageName = "registry.example:5000/team/app";
    imageDigest = "${D1}";
    hash = "sha256-d6xi4mKdjkX2JFicDIv5niSzpyI0m/Hnm8GGAIU04kY=";
    finalImageTag = "v\${v}";
    os = "linux"; arch = "amd64";
  };
  c = pullImage { imageName = "quote\\"and\\\\slash"; imageDigest = "${D1}"; sha256 = "x"; arch = builtins.currentSystem; };
}
`;

/** What real Nix evaluates the file to, with pullImage as the identity function. */
function nixEval(file: string): Record<string, Record<string, unknown>> {
  const r = spawnSync('nix-instantiate', ['--eval', '--strict', '--json', '-E', `import ${file} { pullImage = a: a; }`], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, Record<string, unknown>>;
}

test('pullImage sets: literal attributes equal what real Nix evaluates; computed ones are reported by line', () => {
  const pins = readNixPins(PINS_NIX, 'pins.nix');
  assert.is(pins.length, 3, 'the commented-out call is not a pin');
  const [a, b, c] = pins as [typeof pins[0], typeof pins[0], typeof pins[0]];
  assert.is(a.line, 4);
  assert.equal(a.attrs, { imageName: 'nixos/nix', imageDigest: D0, sha256: '0h5fmhk3pyvx8s0ppfxl1nxsqyb1rxv1lm6qfgzy1b0wbh8hn3vk', finalImageName: 'nix', finalImageTag: '2.2.1\n', tlsVerify: false });
  assert.equal(a.unsupported, []);
  assert.equal(b.unsupported, [{ attr: 'finalImageTag', line: 16, reason: 'string with ${…} interpolation (only literals are read)' }]);
  assert.equal(c.unsupported, [{ attr: 'arch', line: 19, reason: 'computed value (only literals are read)' }]);
  assert.is(c.attrs.imageName, 'quote"and\\slash');
  if (!havePeer('nix-instantiate')) return;
  const t = tempDir();
  try {
    const file = join(t.path, 'pins.nix');
    writeFileSync(file, PINS_NIX);
    const evaluated = nixEval(file);
    for (const [pin, key] of [[a, 'a'], [b, 'b'], [c, 'c']] as const) {
      for (const [attr, value] of Object.entries(pin.attrs)) assert.equal(value, evaluated[key]![attr], `${key}.${attr}`);
    }
  } finally {
    t.remove();
  }
});

test('string literals with escapes, comments and indented strings read as real Nix reads them (differential)', () => {
  if (!havePeer('nix-instantiate')) return;
  const chars = fc.constantFrom('a', 'Z', '0', ' ', '"', '\\', '$', '{', '}', '\n', '\t', "'", '#', '/', '*', ';', 'é');
  const text = fc.array(chars, { maxLength: 24 }).map((cs) => cs.join(''));
  // Nix's own escaping for "…" strings, and a '' string form for texts that have no '' or ${.
  const dq = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$\{/g, '\\${').replace(/\n/g, '\\n').replace(/\t/g, '\\t')}"`;
  const samples = fc.sample(fc.tuple(text, fc.boolean(), fc.constantFrom('', ' # note\n', ' /* c */ ')), { numRuns: 60, seed: 42 });
  const body = samples.map(([s, indented, comment], i) => {
    const useIndented = indented && !s.includes("'") && !s.includes('$') && !s.includes('\t') && !/^\s|\s$/.test(s) && !s.includes('\n');
    const lit = useIndented ? `''\n    ${s}\n  ''` : dq(s);
    return `  p${i} = pullImage {${comment}imageName = ${lit};${comment}imageDigest = "${D0}"; };`;
  }).join('\n');
  const src = `{ pullImage }: {\n${body}\n}\n`;
  const t = tempDir();
  try {
    const file = join(t.path, 'gen.nix');
    writeFileSync(file, src);
    const evaluated = nixEval(file);
    const pins = readNixPins(src, file);
    assert.is(pins.length, samples.length);
    pins.forEach((p, i) => {
      assert.equal(p.unsupported, [], `p${i}`);
      assert.is(p.attrs.imageName, evaluated[`p${i}`]!.imageName, `p${i}: ${JSON.stringify(samples[i])}`);
    });
  } finally {
    t.remove();
  }
});

test('a malformed .nix file is a one-line error naming file and line', () => {
  assert.throws(() => readNixPins('{ a = pullImage { imageName = "x; }', 'bad.nix'), /^bad\.nix:1: unterminated string$/);
  assert.throws(() => readNixPins('x = pullImage { imageName = "x";\n', 'bad.nix'), /^bad\.nix:2: missing '}' of pullImage/);
});

test('nix-prefetch-docker --json output is read, with errors naming the field', () => {
  const one = readPrefetchDockerJson(JSON.stringify({ imageName: 'nixos/nix', imageDigest: D0, sha256: 'abc', finalImageName: 'nixos/nix', finalImageTag: 'latest' }), 'p.json');
  assert.is(one.length, 1);
  assert.is(one[0]!.finalImageTag, 'latest');
  assert.throws(() => readPrefetchDockerJson('[{"imageName":"x"}]', 'p.json'), /^p\.json: \[0\]: imageDigest: expected a non-empty string$/);
  assert.throws(() => readPrefetchDockerJson(`{"imageName":"x","imageDigest":"${D0}"}`, 'p.json'), /neither sha256 nor hash/);
  assert.throws(() => readPrefetchDockerJson('nope', 'p.json'), /^p\.json: not JSON/);
});

const image = (over: Partial<ImagePin> = {}): ImagePin => ({
  imageName: 'library/debian', imageDigest: D0, fromTag: 'bookworm', hash: 'sha256-d6xi4mKdjkX2JFicDIv5niSzpyI0m/Hnm8GGAIU04kY=',
  finalImageName: 'debian', finalImageTag: 'bookworm', os: 'linux', arch: 'amd64',
  storePath: '/nix/store/ij3gw72f4n5z4dz6nnzl1731p9kmjbwr-docker-image-debian-bookworm.tar', ...over,
});

test('lock file: round trip, stable order, re-locking replaces the entry in place', () => {
  let lock = withPin(emptyLock(), { image: image({ imageName: 'library/zzz' }) });
  lock = withPin(lock, { image: image() });
  lock = withPin(lock, { url: { url: 'https://example.org/a.tar.gz', hash: 'sha256-d6xi4mKdjkX2JFicDIv5niSzpyI0m/Hnm8GGAIU04kY=', unpack: true, name: 'source', storePath: '/nix/store/ij3gw72f4n5z4dz6nnzl1731p9kmjbwr-source' } });
  const text = serializeLock(lock);
  assert.ok(text.endsWith('}\n'));
  assert.equal(parseLock(text, 'l.json'), lock);
  assert.is(serializeLock(parseLock(text, 'l.json')), text, 'stable');
  assert.equal(lock.images.map((i) => i.imageName), ['library/debian', 'library/zzz'], 'sorted by identity');
  const moved = withPin(lock, { image: image({ imageDigest: D1 }) });
  assert.is(moved.images.length, 2, 'the same tag re-locked replaces its entry');
  assert.is(moved.images[0]!.imageDigest, D1);
  const diff = serializeLock(moved).split('\n').filter((l, i) => l !== text.split('\n')[i]);
  assert.is(diff.length, 1, 'a moved tag is a one-line diff');
});

test('lock file: every malformed field is an error naming the key path', () => {
  const good = JSON.parse(serializeLock(withPin(emptyLock(), { image: image() }))) as { images: Record<string, unknown>[] };
  const broken = (mutate: (o: { images: Record<string, unknown>[]; [k: string]: unknown }) => void): string => {
    const o = structuredClone(good) as { images: Record<string, unknown>[]; [k: string]: unknown };
    mutate(o);
    return JSON.stringify(o);
  };
  const cases: [string, RegExp][] = [
    [broken((o) => { o.images[0]!.imageDigest = 'sha256:abc'; }), /^l\.json: images\[0\]\.imageDigest: expected sha256:<64 hex digits>$/],
    [broken((o) => { o.images[0]!.colour = 'red'; }), /^l\.json: images\[0\]\.colour: unknown key$/],
    [broken((o) => { delete o.images[0]!.hash; }), /^l\.json: images\[0\]\.hash: missing$/],
    [broken((o) => { o.lockVersion = 2; }), /^l\.json: lockVersion: expected 1, got 2/],
    [broken((o) => { o.extra = 1; }), /^l\.json: extra: unknown key$/],
    ['{', /^l\.json: not JSON/],
  ];
  for (const [text, re] of cases) {
    const err = (() => { try { parseLock(text, 'l.json'); } catch (e) { return e as Error; } return undefined; })();
    assert.ok(err instanceof LockFileError, text);
    assert.match(err!.message, re);
  }
});

test.run();
