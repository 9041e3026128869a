/** pullV1 against the fixture v1 registry: the pull.nix directory, byte for byte. */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeDispatchers } from '../lib/fetch/index.js';
import { hashPath } from '../lib/nar/index.js';
import { pullV1, undiciHttp, type PullV1Options, type PullV1Result, type V1Http } from '../lib/registry/v1/index.js';
import {
  buildV1Image, noise, num, startV1Registry, writeJson, type V1FixtureImage, type V1Registry, type V1RegistryOptions,
} from '../store-fixtures/v1-registry/index.js';
import { rejects } from './helpers/assert.js';
import { havePeer } from './helpers/peers.js';
import { runOk } from './helpers/run.js';
import { PY_DETJSON } from './helpers/detjson-py.js';
import { tempDir } from './helpers/tmp.js';

const NAME = 'library/busybox';

const IMAGE = buildV1Image({
  name: NAME,
  tags: ['latest', '1.0'],
  layers: [
    { files: { 'bin/busybox': noise(200_000, 'busybox'), 'etc/passwd': 'root:x:0:0::/root:/bin/sh\n' } },
    {
      files: { 'etc/motd': 'héllo wörld\n' },
      gzip: true,
      json: { comment: 'ünïcödé/\u{1f600} "quoted" \\ tab\t', author: 'Dœ <doe@example.org>', x_big: num('123456789012345678901234567890'), x_float: num('1.0'), x_exp: num('1e5') },
    },
    { files: { 'usr/bin/app': noise(5000, 'app') }, json: { Size: 0 } },
  ],
});

/** Quick retries and no proxy variables from the environment. */
const BASE: Partial<PullV1Options> = { retryBaseMs: 5, fetch: { env: {}, stallTimeoutMs: 5000 } };

async function withRegistry(opts: Partial<V1RegistryOptions>, fn: (reg: V1Registry, dir: string) => Promise<void>): Promise<void> {
  const reg = await startV1Registry({ images: [IMAGE], ...opts });
  const dir = tempDir('fi-v1-');
  try {
    await fn(reg, dir.path);
  } finally {
    await reg.close();
    dir.remove();
  }
}

function pull(reg: V1Registry, out: string, extra: Partial<PullV1Options> = {}): Promise<PullV1Result> {
  return pullV1({ ...BASE, name: NAME, indexUrl: reg.indexUrl, out, ...extra });
}

async function narHash(dir: string): Promise<string> {
  return (await hashPath(dir)).hash.sri;
}

/** Every file under `dir`, relative path → bytes. */
function tree(dir: string, prefix = ''): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of readdirSync(join(dir, prefix)).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(join(dir, rel)).isDirectory()) for (const [k, v] of tree(dir, rel)) out.set(k, v);
    else out.set(rel, readFileSync(join(dir, rel)));
  }
  return out;
}

/** The directory pull.sh would have made, assembled with jshon, sh and Python's json module. */
async function referenceDir(img: V1FixtureImage, tag: string, dir: string): Promise<void> {
  mkdirSync(dir);
  const env = { ...process.env, PYTHONIOENCODING: 'utf-8' };
  writeFileSync(join(dir, 'repositories'), await runOk('jshon', ['-n', 'object', '-n', 'object', '-s', img.id, '-i', tag, '-i', img.name], { input: '' }));
  for (const id of img.ancestry) {
    const layer = img.layers.get(id)!;
    mkdirSync(join(dir, id));
    await runOk('sh', ['-c', 'echo \'1.0\' > "$1/VERSION"', 'sh', join(dir, id)]);
    writeFileSync(join(dir, id, 'json'), await runOk('python3', ['-c', PY_DETJSON], { input: writeJson(layer.json), env }));
    writeFileSync(join(dir, id, 'layer.tar'), layer.tar);
  }
}

test('pulls the pull.nix directory; it equals one assembled with jshon, sh and Python', async () => {
  if (!havePeer('jshon') || !havePeer('python3')) return;
  await withRegistry({}, async (reg, dir) => {
    const r = await pull(reg, join(dir, 'out'));
    assert.is(r.imageId, IMAGE.id);
    assert.equal(r.layers, IMAGE.ancestry);
    assert.is(r.registryUrl, `${reg.registryUrl}/v1`);
    await referenceDir(IMAGE, 'latest', join(dir, 'ref'));
    const ours = tree(join(dir, 'out'));
    const ref = tree(join(dir, 'ref'));
    assert.equal([...ours.keys()], [...ref.keys()]);
    for (const [k, v] of ref) assert.ok(v.equals(ours.get(k)!), `${k} differs:\n ours ${ours.get(k)!.toString().slice(0, 300)}\n ref  ${v.toString().slice(0, 300)}`);
    assert.is(await narHash(join(dir, 'out')), await narHash(join(dir, 'ref')));
    assert.is(readFileSync(join(dir, 'out', IMAGE.id, 'VERSION'), 'utf8'), '1.0\n');
  });
});

test('20 pulls from an unstable (Docker Hub 2015) registry give one NAR hash', async () => {
  await withRegistry({ unstable: true, seed: 42 }, async (reg, dir) => {
    // The registry really does vary: raw answers for the same json differ.
    const idx = await fetch(`${reg.indexUrl}/v1/repositories/${NAME}/images`, { headers: { 'X-Docker-Token': 'true' } });
    const token = idx.headers.get('x-docker-token')!;
    const first = await fetch(`${reg.registryUrl}/v1/images/${IMAGE.id}/json`, { headers: { Authorization: `Token ${token}` } });
    const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
    const raws = new Set([await first.text()]);
    for (let i = 0; i < 5; i++) {
      raws.add(await (await fetch(`${reg.registryUrl}/v1/images/${IMAGE.id}/json`, { headers: { Authorization: `Token ${token}`, Cookie: cookie } })).text());
    }
    assert.ok(raws.size >= 4, `expected varying answers, got ${raws.size} distinct`);

    const hashes = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const out = join(dir, `out${i}`);
      await pull(reg, out);
      hashes.add(await narHash(out));
    }
    assert.is(hashes.size, 1, `NAR hashes differ across pulls: ${[...hashes].join(' ')}`);
  });
  // And it is the stable registry's answer too.
  await withRegistry({}, async (reg, dir) => {
    await pull(reg, join(dir, 'out'));
    const stable = await narHash(join(dir, 'out'));
    await withRegistry({ unstable: true, seed: 7 }, async (reg2, dir2) => {
      await pull(reg2, join(dir2, 'out'));
      assert.is(await narHash(join(dir2, 'out')), stable);
    });
  });
});

test('a layer stream dropped mid-body resumes with Range and gives the same directory', async () => {
  let reference = '';
  await withRegistry({}, async (reg, dir) => {
    await pull(reg, join(dir, 'out'));
    reference = await narHash(join(dir, 'out'));
  });
  for (const redirectLayers of [true, false]) {
    await withRegistry({ dropLayerOnce: 100_000, redirectLayers }, async (reg, dir) => {
      const resumes: string[] = [];
      await pull(reg, join(dir, 'out'), { onProgress: (e) => { if (e.kind === 'layer-resume') resumes.push(e.id); } });
      assert.is(await narHash(join(dir, 'out')), reference);
      const big = IMAGE.ancestry[2]!; // the 200 kB base layer
      assert.ok(resumes.includes(big), 'the big layer was resumed');
      const ranged = reg.log.filter((l) => l.status === 206 && l.headers.range === 'bytes=100000-' && l.url.includes(big));
      assert.is(ranged.length, 1, `one ranged request for the big layer from byte 100000 (redirect ${redirectLayers})`);
    });
  }
});

test('a break after the last byte of a layer: the resume answers 416 and the layer is complete', async () => {
  let reference = '';
  await withRegistry({ redirectLayers: false }, async (reg, dir) => {
    await pull(reg, join(dir, 'out'));
    reference = await narHash(join(dir, 'out'));
  });
  await withRegistry({ redirectLayers: false }, async (reg, dir) => {
    let broke = false;
    // A transport whose first layer body delivers every byte and then fails.
    const http: V1Http = async (req) => {
      const res = await undiciHttp(req);
      if (broke || !req.url.pathname.endsWith('/layer') || res.status !== 200) return res;
      broke = true;
      const parts: Buffer[] = [];
      for await (const c of res.body as AsyncIterable<Buffer>) parts.push(c);
      const body = new Readable({ read() {} });
      body.push(Buffer.concat(parts));
      setTimeout(() => body.destroy(new Error('connection reset')), 10);
      return { ...res, headers: { ...res.headers, 'content-length': undefined }, body };
    };
    await pull(reg, join(dir, 'out'), { http, concurrency: 1 });
    assert.ok(broke);
    assert.ok(reg.log.some((l) => l.status === 416), 'the resume asked past the end');
    assert.is(await narHash(join(dir, 'out')), reference);
  });
});

test('credentials: Token only to the registry, Basic only to the index, nothing to storage; cookies stay home', async () => {
  const credentials = { username: 'alice', password: 's3cret' };
  for (const http of [undefined, undiciHttp]) {
    await withRegistry({ credentials }, async (reg, dir) => {
      await pull(reg, join(dir, 'out'), { credentials, ...(http ? { http } : {}) });
      const [token] = reg.tokens;
      assert.ok(token);
      const basic = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
      for (const l of reg.log) {
        const auth = l.headers.authorization;
        if (l.role === 'index') assert.is(auth, basic);
        if (l.role === 'registry') assert.is(auth, `Token ${token}`);
        if (l.role === 'storage') {
          assert.is(auth, undefined, 'no Authorization to storage');
          assert.not.match(l.headers.cookie ?? '', /session=/, 'registry cookie not sent to storage');
          assert.not.match(l.url, /signature=/);
        }
        if (l.role !== 'storage') assert.not.match(l.headers.cookie ?? '', /cdn=/, 'storage cookie not sent elsewhere');
      }
      // After its first request, the registry insisted on the cookie (the pull passed, so it was sent).
      assert.ok(reg.log.filter((l) => l.role === 'registry' && /session=/.test(l.headers.cookie ?? '')).length >= 6);
    });
  }
});

test('no token, no endpoints header (a private registry): falls back to the index host', async () => {
  await withRegistry({ issueToken: false, requireToken: false, endpoints: 'none' }, async (reg, dir) => {
    const r = await pull(reg, join(dir, 'out'));
    assert.is(r.registryUrl, `${reg.indexUrl}/v1`);
    assert.ok(reg.log.every((l) => l.role !== 'registry' && l.headers.authorization === undefined));
    assert.is(readdirSync(join(dir, 'out')).length, 4);
  });
});

test('an image id given instead of a tag skips the tag lookup; the tag still names it in repositories', async () => {
  await withRegistry({}, async (reg, dir) => {
    const r = await pull(reg, join(dir, 'out'), { imageId: IMAGE.id, tag: '1.0' });
    assert.is(r.imageId, IMAGE.id);
    assert.not.ok(reg.log.some((l) => l.url.includes('/tags/')));
    assert.match(readFileSync(join(dir, 'out', 'repositories'), 'utf8'), /"1\.0": /);
  });
});

function oneLine(err: Error, reg: V1Registry): void {
  assert.not.match(err.message, /\n/);
  for (const t of reg.tokens) assert.not.ok(err.message.includes(t), 'the token is not in the message');
  assert.not.ok(err.message.includes('signature='));
}

test('clear one-line errors: missing token, invalid token, credentials, unknown tag and repository', async () => {
  await withRegistry({ issueToken: false, requireToken: true }, async (reg, dir) => {
    oneLine(await rejects(() => pull(reg, join(dir, 'out')), /tag 'latest' of 'library\/busybox': access refused \(HTTP 401\): the index issued no X-Docker-Token \(missing token\)/), reg);
  });
  await withRegistry({ rejectTokens: true }, async (reg, dir) => {
    oneLine(await rejects(() => pull(reg, join(dir, 'out')), /access refused \(HTTP 403\): the registry rejected the X-Docker-Token from the index \(invalid or expired token\)/), reg);
  });
  await withRegistry({ credentials: { username: 'a', password: 'b' } }, async (reg, dir) => {
    await rejects(() => pull(reg, join(dir, 'o1')), /index http:\/\/127\.0\.0\.1:\d+: repository 'library\/busybox': access refused \(HTTP 401\): credentials missing/);
    const err = await rejects(() => pull(reg, join(dir, 'o2'), { credentials: { username: 'a', password: 'wrong-pw' } }), /credentials invalid/);
    assert.not.match(err.message, /wrong-pw/);
  });
  await withRegistry({}, async (reg, dir) => {
    oneLine(await rejects(() => pull(reg, join(dir, 'o1'), { tag: 'nope' }), /registry http:\/\/127\.0\.0\.1:\d+: tag 'nope' of 'library\/busybox': unknown tag \(HTTP 404 from http:\/\/127\.0\.0\.1:\d+\/v1\/repositories\/library\/busybox\/tags\/nope\)/), reg);
    await rejects(() => pullV1({ ...BASE, name: 'library/nothing', indexUrl: reg.indexUrl, out: join(dir, 'o2') }), /repository 'library\/nothing': not found \(HTTP 404\)/);
    await rejects(() => pull(reg, join(dir, 'o3'), { imageId: 'ab'.repeat(32) }), /ancestry of abab.*: unknown image \(HTTP 404/);
    await rejects(() => pull(reg, join(dir, 'o4'), { name: 'Bad Name' }), /invalid v1 repository name 'Bad Name'/);
    await rejects(() => pull(reg, join(dir, 'o5'), { tag: '-x' }), /invalid tag '-x'/);
    await rejects(() => pull(reg, join(dir, 'o6'), { imageId: 'XYZ' }), /imageId 'XYZ' is not a v1 image id/);
  });
});

test('clear errors for broken ancestry and bad layer json', async () => {
  const base = { name: NAME, tags: ['latest'] };
  const two = buildV1Image({ ...base, layers: [{ files: { a: '1' } }, { files: { b: '2' } }] });
  const [top, parent] = two.ancestry as [string, string];
  const ghost = 'f'.repeat(64);
  const cases: Array<[string, RegExp]> = [
    ['{"not": "a list"}', /ancestry of [0-9a-f]{64}: broken ancestry: not a JSON list/],
    ['[]', /broken ancestry: empty list/],
    [JSON.stringify([top, parent, top]), /broken ancestry: [0-9a-f]{64} appears twice \(a cycle\)/],
    [JSON.stringify([top, 'nope']), /broken ancestry: entry 1 is not an image id/],
    [JSON.stringify([parent]), /broken ancestry: starts with [0-9a-f]{64}, not the image/],
    [JSON.stringify([top]), /layer [0-9a-f]{64} json: broken ancestry: layer json names parent '[0-9a-f]{64}', ancestry says none/],
    ['[1, 2', /ancestry of [0-9a-f]{64}: answer is not JSON/],
  ];
  for (const [ancestryText, message] of cases) {
    const img = buildV1Image({ ...base, layers: [{ files: { a: '1' } }, { files: { b: '2' } }], ancestryText });
    const reg = await startV1Registry({ images: [img] });
    const dir = tempDir('fi-v1-');
    try {
      oneLine(await rejects(() => pull(reg, join(dir.path, 'out')), message), reg);
    } finally {
      await reg.close();
      dir.remove();
    }
  }
  {
    // A base layer whose ancestry claims a parent the registry does not have.
    const single = buildV1Image({ ...base, layers: [{ files: { a: '1' } }] });
    const img = buildV1Image({ ...base, layers: [{ files: { a: '1' } }], ancestryText: JSON.stringify([single.id, ghost]) });
    const reg = await startV1Registry({ images: [img] });
    const dir = tempDir('fi-v1-');
    try {
      oneLine(await rejects(() => pull(reg, join(dir.path, 'out'), { concurrency: 1 }), /layer f{64} json: layer listed in the ancestry is missing \(broken ancestry\) \(HTTP 404/), reg);
    } finally {
      await reg.close();
      dir.remove();
    }
  }
  for (const [jsonText, message] of [
    ['{"id": 1,', /layer [0-9a-f]{64} json: invalid JSON: .* at char \d+/],
    ['[1, 2]', /layer json is not a JSON object/],
    ['{"config": null}', /detjson cannot look up 'ExposedPorts' in config: it is null/],
    ['{"id": "0000000000000000000000000000000000000000000000000000000000000000"}', /layer json has id '0{64}', expected/],
  ] as Array<[string, RegExp]>) {
    const img = buildV1Image({ ...base, layers: [{ files: { a: '1' }, jsonText }] });
    const reg = await startV1Registry({ images: [img] });
    const dir = tempDir('fi-v1-');
    try {
      oneLine(await rejects(() => pull(reg, join(dir.path, 'out')), message), reg);
    } finally {
      await reg.close();
      dir.remove();
    }
  }
});

test('refuses an output directory that is not empty', async () => {
  const dir = tempDir('fi-v1-');
  try {
    writeFileSync(join(dir.path, 'x'), '');
    await rejects(() => pullV1({ name: NAME, indexUrl: 'http://127.0.0.1:9', out: dir.path }), /output directory .* is not empty/);
  } finally {
    dir.remove();
  }
});

test.after(async () => {
  await closeDispatchers();
});

test.run();
