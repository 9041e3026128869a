import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { detjson, pyFloatRepr, repositoriesFile } from '../lib/registry/v1/index.js';
import { rng } from '../store-fixtures/v1-registry/index.js';
import { havePeer } from './helpers/peers.js';
import { runOk } from './helpers/run.js';
import { PY_DETJSON_BATCH } from './helpers/detjson-py.js';

async function pythonDetjson(inputs: Buffer[]): Promise<Array<string | null>> {
  const stdout = await runOk('python3', ['-c', PY_DETJSON_BATCH], { input: JSON.stringify(inputs.map((b) => b.toString('base64'))) });
  return JSON.parse(stdout.toString('utf8')) as Array<string | null>;
}

function ours(input: Buffer): string | null {
  try {
    return detjson(input);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- generated JSON texts

type Model =
  | { k: 'lit'; text: string } // null, true, false, numbers, NaN, Infinity: written as is
  | { k: 'str'; v: string }
  | { k: 'arr'; v: Model[] }
  | { k: 'obj'; v: Array<[string, Model]> };

const lit = (text: string): Model => ({ k: 'lit', text });

const intLiteral = fc.oneof(
  fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map((n) => n.toString()),
  fc.constantFrom('0', '-0', '9007199254740993', '-9007199254740993', '18446744073709551616'),
);
// Float literals of every shape NUMBER_RE allows; both sides must round them alike.
const floatLiteral = fc.oneof(
  fc.tuple(fc.constantFrom('', '-'), fc.oneof(fc.constant('0'), fc.stringMatching(/^[1-9][0-9]{0,25}$/)),
    fc.option(fc.stringMatching(/^[0-9]{1,25}$/)), fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.integer({ min: 0, max: 400 }))))
    .map(([s, i, f, e]) => `${s}${i}${f === null ? '.0' : '.' + f}${e === null ? '' : e[0] + e[1] + e[2]}`),
  fc.double().filter(Number.isFinite).map((x) => {
    const t = x.toExponential();
    return Object.is(x, -0) ? '-0.0' : t;
  }),
  fc.constantFrom('1.0', '1e5', '-0.0', '1e16', '1e15', '0.0001', '0.00001', '1E400', '-1e400', '1e-400', '5e-324', '2.5e-05', '1.7976931348623157e308', '123456789012345678.0', '0.30000000000000004'),
);
const specialLiteral = fc.constantFrom('null', 'true', 'false', 'NaN', 'Infinity', '-Infinity');

// Keys that exercise code point order (astral vs U+E000..U+FFFF) and detjson's keys.
const key = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 6 }),
  fc.constantFrom('Size', 'config', 'container_config', 'ExposedPorts', 'MacAddress', 'NetworkDisabled', 'PortSpecs', 'VolumeDriver', '\uffff', '\u{1f600}', '\ue000', 'a', 'A', '', '__proto__'),
);

const { value: anyValue } = fc.letrec<{ value: Model }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    intLiteral.map(lit), floatLiteral.map(lit), specialLiteral.map(lit),
    fc.string({ unit: 'binary', maxLength: 12 }).map((v): Model => ({ k: 'str', v })),
    fc.array(tie('value'), { maxLength: 4 }).map((v): Model => ({ k: 'arr', v })),
    fc.array(fc.tuple(key, tie('value')), { maxLength: 5 }).map((v): Model => ({ k: 'obj', v })),
  ),
}));

const defaultish: fc.Arbitrary<Model> = fc.oneof(
  fc.constantFrom('null', 'false', 'true', '0', '-0', '0.0', '-0.0', '0e5', '1', '1e-400', 'NaN').map(lit),
  fc.constantFrom('', 'x', '0').map((v): Model => ({ k: 'str', v })),
  fc.constant<Model>({ k: 'arr', v: [] }), fc.constant<Model>({ k: 'obj', v: [] }),
);
const configModel: fc.Arbitrary<Model> = fc.oneof(
  fc.array(fc.tuple(fc.constantFrom('ExposedPorts', 'MacAddress', 'NetworkDisabled', 'PortSpecs', 'VolumeDriver', 'Cmd', 'Env'), defaultish), { maxLength: 7 })
    .map((v): Model => ({ k: 'obj', v })),
  defaultish,
  fc.constantFrom('has MacAddress inside', 'plain').map((v): Model => ({ k: 'str', v })),
  fc.constant<Model>({ k: 'arr', v: [{ k: 'str', v: 'VolumeDriver' }] }),
);
// Layer-json-like objects: where makedet actually does something (or raises).
const layerModel: fc.Arbitrary<Model> = fc.tuple(
  fc.option(defaultish), fc.option(configModel), fc.option(configModel), fc.array(fc.tuple(key, anyValue), { maxLength: 3 }),
).map(([size, config, cc, rest]): Model => {
  const v: Array<[string, Model]> = [...rest];
  if (size) v.push(['Size', size]);
  if (config) v.push(['config', config]);
  if (cc) v.push(['container_config', cc]);
  return { k: 'obj', v };
});

/** Renders a model with random whitespace and random (valid) escaping choices. */
function render(m: Model, rnd: () => number): string {
  const ws = () => ['', '', ' ', '\n', '\t', '\r\n  '][Math.floor(rnd() * 6)]!;
  const str = (s: string) => {
    let out = '"';
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      const ch = s[i]!;
      const u = () => '\\u' + (rnd() < 0.5 ? c.toString(16).padStart(4, '0') : c.toString(16).toUpperCase().padStart(4, '0'));
      if (ch === '"' || ch === '\\') out += rnd() < 0.8 ? '\\' + ch : u();
      else if (c < 0x20) out += ({ 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' } as Record<number, string>)[c] ?? u();
      else if (ch === '/') out += rnd() < 0.5 ? '\\/' : '/';
      else if (c >= 0xd800 && c <= 0xdfff) out += u(); // each half of a pair (or a lone half) escaped
      else out += rnd() < 0.3 ? u() : ch;
    }
    return out + '"';
  };
  switch (m.k) {
    case 'lit': return m.text;
    case 'str': return str(m.v);
    case 'arr': return '[' + ws() + m.v.map((e) => render(e, rnd)).join(ws() + ',' + ws()) + ws() + ']';
    case 'obj': return '{' + ws() + m.v.map(([k, v]) => str(k) + ws() + ':' + ws() + render(v, rnd)).join(ws() + ',' + ws()) + ws() + '}';
  }
}

function texts(arb: fc.Arbitrary<Model>, n: number, seed: number): Buffer[] {
  const rnd = rng(seed);
  return fc.sample(arb, { numRuns: n, seed }).map((m) => Buffer.from((rnd() < 0.2 ? ' \n' : '') + render(m, rnd) + (rnd() < 0.2 ? '\n' : ''), 'utf8'));
}

async function compareWithPython(inputs: Buffer[]): Promise<void> {
  const theirs = await pythonDetjson(inputs);
  let agreedOk = 0;
  inputs.forEach((input, i) => {
    const mine = ours(input);
    if (mine !== theirs[i]) {
      assert.unreachable(`detjson differs from Python on ${JSON.stringify(input.toString('utf8'))}:\n  ours:   ${mine}\n  python: ${theirs[i]}`);
    }
    if (mine !== null) agreedOk++;
  });
  // Most generated inputs must be accepted, or the comparison proves little.
  assert.ok(agreedOk > inputs.length / 3, `only ${agreedOk} of ${inputs.length} inputs were valid`);
}

test('detjson equals Python json on generated values (unicode, big ints, floats, nesting)', async () => {
  if (!havePeer('python3')) return;
  await compareWithPython(texts(anyValue, 1500, 1));
});

test('detjson equals detjson.py on generated layer-shaped objects (default keys, odd types)', async () => {
  if (!havePeer('python3')) return;
  await compareWithPython(texts(layerModel, 1500, 2));
});

test('detjson accepts and rejects what Python accepts and rejects (mutated texts)', async () => {
  if (!havePeer('python3')) return;
  const rnd = rng(3);
  const base = texts(layerModel, 400, 4);
  const mutated = base.map((b) => {
    const at = Math.floor(rnd() * (b.length + 1));
    if (rnd() < 0.5) return b.subarray(0, at);
    const junk = ['', ',', '}', ']', '"', '\\', '0', '-', '.', 'e', 'x', '\u0001', '\u00e9'][Math.floor(rnd() * 13)]!;
    return Buffer.concat([b.subarray(0, at), Buffer.from(junk), b.subarray(at)]);
  });
  const theirs = await pythonDetjson(mutated);
  mutated.forEach((input, i) => {
    const mine = ours(input);
    if (mine !== theirs[i]) assert.unreachable(`differs from Python on ${JSON.stringify(input.toString('latin1'))}: ours ${mine}, python ${theirs[i]}`);
  });
});

test('pyFloatRepr equals Python repr() on random doubles and edge cases', async () => {
  if (!havePeer('python3')) return;
  const edge = [1, 1e5, -0, 0, 1e16, 1e15, 9999999999999998, 1e-4, 1e-5, 5e-324, Number.MAX_VALUE, Number.MIN_VALUE, 0.1 + 0.2, 123456789012345680, 1.5e-7, 2 ** 53, 2 ** 53 + 2, 1 / 3, NaN, Infinity, -Infinity];
  const bits = fc.sample(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { numRuns: 3000, seed: 5 });
  const doubles = [...edge, ...fc.sample(fc.double(), { numRuns: 3000, seed: 6 })];
  const buf = Buffer.alloc(8);
  for (const b of bits) {
    buf.writeBigUInt64BE(b);
    doubles.push(buf.readDoubleBE());
  }
  const hex = doubles.map((d) => {
    buf.writeDoubleBE(d);
    return buf.toString('hex');
  });
  const py = "import json,struct,sys\nprint(json.dumps([json.dumps(struct.unpack('>d', bytes.fromhex(h))[0]) for h in json.load(sys.stdin)]))";
  const theirs = JSON.parse((await runOk('python3', ['-c', py], { input: JSON.stringify(hex) })).toString()) as string[];
  doubles.forEach((d, i) => assert.is(pyFloatRepr(d), theirs[i], `repr of ${d}`));
});

test('detjson: known vectors', () => {
  assert.is(detjson('{"b": 1, "a": [1.0, 1e5, -0, -0.0, 100000000000000000001]}'), '{"a": [1.0, 100000.0, 0, -0.0, 100000000000000000001], "b": 1}');
  assert.is(detjson('{"Size":0,"config":{"MacAddress":"","Cmd":null},"container_config":{"NetworkDisabled":0.0,"ExposedPorts":null}}'),
    '{"config": {"Cmd": null}, "container_config": {}}');
  assert.is(detjson('{"Size": false, "x": "\u00e9/\u{1f600}\\u001f\u007f"}'), '{"x": "\\u00e9/\\ud83d\\ude00\\u001f\\u007f"}');
  assert.is(detjson('{"Size": 1}'), '{"Size": 1}');
  assert.is(detjson('{"a": NaN, "b": -Infinity, "c": 1E400}'), '{"a": NaN, "b": -Infinity, "c": Infinity}');
  assert.is(detjson('{"\ue000": 1, "\u{10000}": 2}'), '{"\\ue000": 1, "\\ud800\\udc00": 2}');
  assert.is(detjson(Buffer.from('\ufeff{}')), '{}', 'a UTF-8 BOM is dropped, as json.loads(bytes) does');
  assert.throws(() => detjson('{"config": null}'), /cannot look up 'ExposedPorts' in config: it is null/);
  assert.throws(() => detjson('{"a": 1,}'), /invalid JSON: expected a property name/);
  assert.throws(() => detjson(Buffer.from([0x7b, 0xff, 0x7d])), /not valid UTF-8/);
  assert.throws(() => detjson('[1] x'), /extra data/);
});

// ---------------------------------------------------------------- repositories vs jshon

test('repositoriesFile equals jshon -n object -n object -s ID -i TAG -i NAME', async () => {
  if (!havePeer('jshon')) return;
  const id = 'a'.repeat(64);
  const cases: Array<[string, string, string]> = [
    ['ubuntu', 'latest', id], ['library/ubuntu', '14.04', id], ['my.name_x-y/re-po', 'v1.0_rc-2', 'f'.repeat(64)],
    ['quo"te\\back/slash', 'tab\there\nnl\r\b\f', 'ctl\u0001\u001f\u007f'], ['ünïcödé', '\u{1f600}', '\ue000\uffff'], ['', '', ''],
  ];
  for (const [n, t, i] of fc.sample(fc.tuple(fc.string({ unit: 'binary', maxLength: 10 }), fc.string({ unit: 'binary', maxLength: 10 }), fc.string({ unit: 'binary', maxLength: 10 })), { numRuns: 30, seed: 7 })) {
    cases.push([n, t, i]);
  }
  for (const [name, tag, imageId] of cases.filter((c) => !c.join('').includes('\0'))) {
    const expected = await runOk('jshon', ['-n', 'object', '-n', 'object', '-s', imageId, '-i', tag, '-i', name], { input: '' });
    assert.is(repositoriesFile(name, tag, imageId), expected.toString('utf8'), `name ${JSON.stringify(name)} tag ${JSON.stringify(tag)}`);
  }
});

test('repositoriesFile rejects text jshon cannot take (lone surrogates)', () => {
  assert.throws(() => repositoriesFile('a\ud800', 'latest', 'x'), /lone surrogate/);
});

test.run();
