import fc from 'fast-check';
import { LOCK_VERSION, parseLock, readNixPins, readPrefetchDockerJson, serializeLock, type LockFile } from '../../lib/audit/index.js';
import { CURL_FLAGS_TABLE, parseCurlFlags, quoteShellWord, splitShellWords } from '../../lib/fetch/index.js';
import { HASH_ALGOS, HASH_FORMATS, Hash, parseHash } from '../../lib/hash/index.js';
import { dockerConfigToOci } from '../../lib/image/oci-convert.js';
import { formatNarInfo, parseNarInfo, type NarInfo } from '../../lib/mirror/index.js';
import { cacheInfoStoreDir } from '../../lib/mirror/narinfo.js';
import { MEDIA_TYPES, describeErrorBody, formatReference, parseManifest, parseReference, parseTokenAnswer } from '../../lib/registry/index.js';
import { layerJson, parseAncestry, parseTagAnswer } from '../../lib/registry/v1/protocol.js';
import { fuzzer, type Fuzzer } from './harness.js';
import { mutatedOrRaw, mutatedOrRawText } from './mutate.js';
import { expect, rejectsCleanly, unacceptableError } from './oracle.js';

const STORE = '/nix/store';
const seedBytes = fc.uint8Array({ minLength: 1, maxLength: 16 });
const hashArb = (algo: (typeof HASH_ALGOS)[number] = 'sha256') => seedBytes.map((b) => Hash.of(algo, b));
const hex64 = hashArb().map((h) => h.base16);
const digestArb = hex64.map((h) => `sha256:${h}`);
const storeName = fc.stringMatching(/^[A-Za-z0-9+\-._?=]{1,20}$/).filter((n) => !n.startsWith('.'));
const storePathArb = fc.tuple(hashArb(), storeName).map(([h, n]) => `${STORE}/${h.nix32.slice(0, 32)}-${n}`);
const json = (v: unknown) => JSON.stringify(v);
const bytesOf = (a: fc.Arbitrary<string>) => a.map((s) => Buffer.from(s, 'utf8'));

/** A pure parser fuzzed with mutated valid inputs and raw ones: it returns or throws one of our errors. */
function textFuzzer<T>(name: string, arbitrary: fc.Arbitrary<T>, parse: (input: T) => unknown): Fuzzer {
  return fuzzer({ name, arbitrary, async check(input) { await rejectsCleanly(() => parse(input)); } });
}

const narInfoArb: fc.Arbitrary<NarInfo> = fc.record({
  storePath: storePathArb,
  compression: fc.constantFrom('xz', 'none', 'zstd', 'bzip2'),
  fileHash: fc.option(hashArb(), { nil: undefined }),
  fileSize: fc.option(fc.nat(), { nil: undefined }),
  narHash: hashArb(),
  narSize: fc.integer({ min: 1, max: 2 ** 40 }),
  references: fc.uniqueArray(storePathArb, { maxLength: 3 }).map((r) => r.sort()),
  deriver: fc.option(storePathArb.map((p) => `${p}.drv`), { nil: undefined }),
  system: fc.option(fc.constantFrom('x86_64-linux', 'aarch64-linux'), { nil: undefined }),
  sigs: fc.array(fc.uint8Array({ minLength: 64, maxLength: 64 }).map((s) => `cache.example.org-1:${Buffer.from(s).toString('base64')}`), { maxLength: 2 }),
}).chain((i) => hashArb().map((h) => {
  const info: NarInfo = { ...i, url: `nar/${h.nix32}.nar${i.compression === 'none' ? '' : `.${i.compression}`}` };
  for (const k of Object.keys(info) as (keyof NarInfo)[]) if (info[k] === undefined) delete info[k];
  return info;
}));
const narInfoKey = (i: NarInfo) => {
  const o: Record<string, unknown> = { ...i, fileHash: i.fileHash?.sri, narHash: i.narHash.sri };
  return json(Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1))));
};

const referenceArb = fc.record({
  domain: fc.option(fc.constantFrom('docker.io', 'localhost:5000', 'ghcr.io', 'registry.example.com:443', '[::1]:5000'), { nil: undefined }),
  path: fc.array(fc.stringMatching(/^[a-z0-9]+([._-][a-z0-9]+)*$/), { minLength: 1, maxLength: 3 }).map((p) => p.join('/')),
  tag: fc.option(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/), { nil: undefined }),
  digest: fc.option(digestArb, { nil: undefined }),
}).map((r) => `${r.domain ? `${r.domain}/` : ''}${r.path}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`);

const descriptor = (types: string[]) => fc.record({ mediaType: fc.constantFrom(...types), digest: digestArb, size: fc.nat() });
const manifestArb = fc.oneof(
  fc.record({
    schemaVersion: fc.constant(2), mediaType: fc.constantFrom(MEDIA_TYPES.dockerManifest, MEDIA_TYPES.ociManifest),
    config: descriptor([MEDIA_TYPES.dockerConfig, MEDIA_TYPES.ociConfig]),
    layers: fc.array(descriptor(['application/vnd.docker.image.rootfs.diff.tar.gzip', 'application/vnd.oci.image.layer.v1.tar+zstd']), { maxLength: 4 }),
  }),
  fc.record({
    schemaVersion: fc.constant(2), mediaType: fc.constantFrom(MEDIA_TYPES.dockerList, MEDIA_TYPES.ociIndex),
    manifests: fc.array(descriptor([MEDIA_TYPES.dockerManifest, MEDIA_TYPES.ociManifest]).chain((d) =>
      fc.record({ os: fc.constantFrom('linux', 'windows', 'unknown'), architecture: fc.constantFrom('amd64', 'arm64', 'arm', 'unknown') }).map((platform) => ({ ...d, platform }))), { maxLength: 4 }),
  }),
).map(json);
const configArb = fc.record({
  architecture: fc.constantFrom('amd64', 'arm64'), os: fc.constant('linux'), created: fc.constantFrom('2024-01-02T03:04:05.123456789Z', '1970-01-01T00:00:00Z', 'yesterday'),
  config: fc.record({ Env: fc.array(fc.string(), { maxLength: 3 }), Cmd: fc.array(fc.string(), { maxLength: 3 }), Labels: fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }) }),
  rootfs: fc.record({ type: fc.constant('layers'), diff_ids: fc.array(digestArb, { maxLength: 3 }) }),
  history: fc.array(fc.record({ created_by: fc.string(), empty_layer: fc.boolean() }), { maxLength: 2 }),
}).map(json);

const lockArb: fc.Arbitrary<LockFile> = fc.record({
  lockVersion: fc.constant(LOCK_VERSION),
  images: fc.array(fc.record({
    imageName: fc.constantFrom('alpine', 'docker.io/library/ubuntu', 'localhost:5000/x'), imageDigest: digestArb, hash: hashArb().map((h) => h.sri),
    finalImageName: fc.constantFrom('alpine', 'x'), finalImageTag: fc.constantFrom('latest', '3.19'), os: fc.constant('linux'), arch: fc.constantFrom('amd64', 'arm64'),
    storePath: storePathArb,
  }), { maxLength: 3 }),
  urls: fc.array(fc.record({
    url: fc.webUrl(), hash: hashArb().map((h) => h.sri), unpack: fc.boolean(), name: storeName, storePath: storePathArb,
  }), { maxLength: 3 }),
  builds: fc.array(fc.record({ spec: fc.constantFrom('a.json', 'dir/b.json'), specSha256: hex64, recipePath: storePathArb, storePath: storePathArb, narHash: hashArb().map((h) => h.sri) }), { maxLength: 2 }),
});

const nixString = fc.stringMatching(/^[A-Za-z0-9:/._@-]{0,30}$/).map(json);
const nixPinsArb = fc.array(fc.record({
  attr: fc.stringMatching(/^[a-z][a-zA-Z0-9_-]{0,8}$/),
  fields: fc.array(fc.tuple(fc.constantFrom('imageName', 'imageDigest', 'sha256', 'hash', 'finalImageTag', 'os', 'arch', 'tlsVerify', 'unknownAttr'), fc.oneof(nixString, fc.constantFrom('true', 'false', 'null', '"${x}"', "''multi\nline''", 'let a = 1; in a'))), { maxLength: 5 }),
}), { maxLength: 3 }).map((pins) => `{ pkgs ? import <nixpkgs> {} }:\n{\n${pins.map((p) => `  ${p.attr} = pkgs.dockerTools.pullImage {\n${p.fields.map(([k, v]) => `    ${k} = ${v};\n`).join('')}  };\n`).join('')}}\n`);
const prefetchArb = fc.array(fc.record({ imageName: fc.constantFrom('alpine', 'x/y'), imageDigest: digestArb, sha256: hashArb().map((h) => h.nix32), finalImageName: fc.constant('alpine'), finalImageTag: fc.constant('latest') }), { minLength: 1, maxLength: 2 })
  .map((a) => json(a.length === 1 ? a[0] : a));

const curlFlagsArb = fc.array(fc.oneof(
  fc.constantFrom(...CURL_FLAGS_TABLE.flatMap((f) => [f.long, ...(f.short ? [f.short] : [])])),
  fc.constantFrom('-H', 'X-A: b', '--max-time', '10', '-u', 'user:pw', '--retry', '3', '-x', 'http://proxy:3128', '--', '-', '-k', "it's", 'a b', '$HOME', '\\'),
), { maxLength: 8 });

export function textFuzzers(): Fuzzer[] {
  return [
    fuzzer({
      name: 'narinfo.roundtrip',
      arbitrary: narInfoArb,
      check(info) {
        const back = parseNarInfo(formatNarInfo(info), 'fuzz.narinfo', STORE);
        expect(narInfoKey(back) === narInfoKey(info), `parseNarInfo(formatNarInfo(x)) != x: ${narInfoKey(back)} vs ${narInfoKey(info)}`);
      },
    }),
    textFuzzer('narinfo.parse', mutatedOrRawText(narInfoArb.map(formatNarInfo)), (t) => parseNarInfo(t, 'cache/x.narinfo', STORE)),
    fuzzer({
      name: 'nix-cache-info.parse',
      arbitrary: mutatedOrRawText(fc.constantFrom('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n', 'StoreDir: /gnu/store\n')),
      check(t) {
        const dir = cacheInfoStoreDir(t);
        expect(!/[\r\n]/.test(dir), 'StoreDir with a line break');
      },
    }),
    textFuzzer('registry.manifest', fc.tuple(mutatedOrRaw(bytesOf(manifestArb)), fc.option(fc.constantFrom(...Object.values(MEDIA_TYPES), 'text/html', ''), { nil: undefined })),
      ([b, contentType]) => parseManifest(b, 'manifest registry.example/x:latest', { contentType })),
    textFuzzer('registry.config', mutatedOrRaw(bytesOf(configArb)), (b) => dockerConfigToOci(b)),
    textFuzzer('registry.token', mutatedOrRaw(bytesOf(fc.record({ token: fc.string(), access_token: fc.string(), expires_in: fc.oneof(fc.integer(), fc.double(), fc.string()) }).map(json))),
      (b) => parseTokenAnswer(b, 'https://auth.example/token')),
    fuzzer({
      name: 'registry.error-body',
      arbitrary: mutatedOrRaw(bytesOf(fc.record({ errors: fc.array(fc.record({ code: fc.constantFrom('MANIFEST_UNKNOWN', 'DENIED', 'X\u001b[31m'), message: fc.string({ unit: 'binary' }) }), { maxLength: 3 }) }).map(json))),
      check(b) {
        const { text } = describeErrorBody(b);
        const why = unacceptableError(new Error(text || 'empty'));
        expect(why === undefined, `describeErrorBody gives an unprintable text: ${why}`);
        expect(text.length <= 201, `describeErrorBody gives ${text.length} characters`);
      },
    }),
    textFuzzer('v1.tag', mutatedOrRaw(bytesOf(hex64.map(json))), (b) => parseTagAnswer(b, 'v1 tag x:latest')),
    textFuzzer('v1.ancestry', fc.tuple(mutatedOrRaw(bytesOf(fc.array(hex64, { minLength: 1, maxLength: 4 }).map(json))), hex64),
      ([b, id]) => parseAncestry(b, id, 'v1 ancestry')),
    textFuzzer('v1.layer-json', fc.tuple(hex64, fc.option(hex64, { nil: undefined })).chain(([id, parent]) =>
      mutatedOrRaw(bytesOf(fc.constant(json({ id, parent, created: '2014-01-01T00:00:00Z', config: { Cmd: ['sh'] }, Size: 1 })))).map((b) => [b, id, parent] as const)),
      ([b, id, parent]) => layerJson(b, id, parent, 'v1 layer json')),
    fuzzer({
      name: 'reference.roundtrip',
      arbitrary: referenceArb,
      async check(s) {
        const r = await rejectsCleanly(() => parseReference(s));
        if (!r.ok) return;
        const again = parseReference(formatReference(r.value));
        expect(json(again) === json(r.value), `parseReference(formatReference(r)) != r for '${s}'`);
      },
    }),
    textFuzzer('reference.parse', mutatedOrRawText(referenceArb), (s) => parseReference(s)),
    fuzzer({
      name: 'hash.roundtrip',
      arbitrary: fc.tuple(fc.constantFrom(...HASH_ALGOS), seedBytes, fc.constantFrom(...HASH_FORMATS)),
      check([algo, seed, fmt]) {
        const h = Hash.of(algo, seed);
        const forms = fmt === 'sri' ? [parseHash(h.sri)] : [parseHash(h.prefixed(fmt)), parseHash(h.format(fmt), algo)];
        for (const back of forms) expect(back.equals(h), `parseHash(${fmt} of ${h.sri}) = ${back.sri}`);
      },
    }),
    textFuzzer('hash.parse', fc.tuple(mutatedOrRawText(fc.tuple(fc.constantFrom(...HASH_ALGOS), seedBytes, fc.constantFrom(...HASH_FORMATS))
      .map(([a, s, f]) => { const h = Hash.of(a, s); return f === 'sri' ? h.sri : h.prefixed(f); })), fc.option(fc.constantFrom(...HASH_ALGOS), { nil: undefined }))
      , ([t, algo]) => parseHash(t, algo)),
    fuzzer({
      name: 'curl.words-roundtrip',
      arbitrary: fc.array(fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }).filter((w) => !w.includes('\0')), { maxLength: 6 }),
      async check(words) {
        const r = await rejectsCleanly(() => splitShellWords(words.map(quoteShellWord).join(' ')));
        if (r.ok) expect(json(r.value) === json(words), `splitShellWords(quote(words)) = ${json(r.value)} for ${json(words)}`);
      },
    }),
    textFuzzer('curl.flags', mutatedOrRawText(curlFlagsArb.map((ws) => ws.map(quoteShellWord).join(' '))), (t) => parseCurlFlags(t, 'NIX_CURL_FLAGS')),
    fuzzer({
      name: 'lock.roundtrip',
      arbitrary: lockArb,
      check(lock) {
        const text = serializeLock(lock);
        const back = parseLock(text, 'fetch-image.lock.json');
        expect(serializeLock(back) === text, 'serializeLock(parseLock(serializeLock(x))) differs');
        expect(json(JSON.parse(text)) === json(JSON.parse(serializeLock(parseLock(text, 'x')))), 'lock round trip lost fields');
      },
    }),
    textFuzzer('lock.parse', mutatedOrRawText(lockArb.map(serializeLock)), (t) => parseLock(t, 'fetch-image.lock.json')),
    textFuzzer('nix-pins.read', mutatedOrRawText(nixPinsArb), (t) => readNixPins(t, 'images.nix')),
    textFuzzer('prefetch-json.read', mutatedOrRawText(prefetchArb), (t) => readPrefetchDockerJson(t, 'pins.json')),
  ];
}
