import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  GoRawJson, archiveManifest, archiveRepositories, goCompactJson, goJsonString, goMarshal, legacyLayers, parseJsonTree,
  stableJson, topLevelRawJson, type GoJsonValue, type JsonTree,
} from '../lib/image/index.js';

// The JSON byte forms behind the docker-archive: Go 1.19 encoding/json as containers/image uses it.

test('goJsonString escapes as Go 1.19 with escapeHTML', () => {
  assert.is(goJsonString('a<b>&c'), '"a\\u003cb\\u003e\\u0026c"');
  assert.is(goJsonString('q"b\\s/'), '"q\\"b\\\\s/"');
  assert.is(goJsonString('\n\r\t\b\f\u0001\u001f'), '"\\n\\r\\t\\u0008\\u000c\\u0001\\u001f"');
  assert.is(goJsonString('é 日本 😀 \u007f'), '"é 日本 😀 \u007f"');
  assert.is(goJsonString('\u2028\u2029'), '"\\u2028\\u2029"');
  assert.is(goJsonString('lone \ud800 surrogate'), '"lone \\ufffd surrogate"');
});

test('goMarshal: structs keep field order, maps sort keys bytewise (integer-like keys too)', () => {
  const map = new Map<string, GoJsonValue>([['b', 1], ['10', 2], ['9', 3], ['a', null], ['é', true]]);
  assert.is(goMarshal(map).toString(), '{"10":2,"9":3,"a":null,"b":1,"é":true}');
  assert.is(goMarshal({ Z: 1, A: [], M: new Map() }).toString(), '{"Z":1,"A":[],"M":{}}');
  assert.is(goMarshal([new GoRawJson(Buffer.from(' { "a" : [ 1.50E+1 , "x y" ] } '))]).toString(), '[{"a":[1.50E+1,"x y"]}]');
  assert.throws(() => goMarshal(1.5), /integers/);
});

test('goCompactJson keeps strings, number forms and escapes; escapes HTML and U+2028/9', () => {
  const src = Buffer.from('{\n  "k" : "a b\\"c\\\\" ,\t"n":[ -0.0e-0 , 1E5 ],\r\n "h":"<&>", "u":"\u2028\\u2029\\/", "e": {} }');
  assert.is(goCompactJson(src).toString(), '{"k":"a b\\"c\\\\","n":[-0.0e-0,1E5],"h":"\\u003c\\u0026\\u003e","u":"\\u2028\\u2029\\/","e":{}}');
});

test('topLevelRawJson: raw member bytes, repeated key -> last wins', () => {
  const m = topLevelRawJson(Buffer.from(' {"a" : 1.0 , "b":{"x": [1, {"y":"}"}]},"a":"second", "c" : null , "d":true}\n'));
  assert.equal([...m.keys()], ['a', 'b', 'c', 'd']);
  assert.is(m.get('a')!.toString(), '"second"');
  assert.is(m.get('b')!.toString(), '{"x": [1, {"y":"}"}]}');
  assert.is(m.get('c')!.toString(), 'null');
  assert.is(m.get('d')!.toString(), 'true');
  assert.throws(() => topLevelRawJson(Buffer.from('[1]')), /not an object/);
});

const jsonValue = fc.jsonValue({ maxDepth: 3 });

test('property: topLevelRawJson and parseJsonTree agree with JSON.parse under any whitespace', () => {
  fc.assert(fc.property(fc.dictionary(fc.string(), jsonValue), fc.constantFrom(0, 1, 3, '\t'), (obj, space) => {
    const text = JSON.stringify(obj, null, space);
    const raw = topLevelRawJson(Buffer.from(text));
    assert.equal([...raw.keys()].sort(), Object.keys(obj).sort());
    for (const [k, v] of raw) assert.equal(JSON.parse(v.toString()), JSON.parse(JSON.stringify(obj[k])));
    const back = (n: JsonTree): unknown => {
      switch (n.t) {
        case 'null': return null;
        case 'bool': return n.v;
        case 'num': return Number(n.raw);
        case 'str': return n.v;
        case 'arr': return n.v.map(back);
        case 'obj': return Object.fromEntries(n.v.map(([k, v]) => [k, back(v)]));
      }
    };
    assert.equal(back(parseJsonTree(text)), JSON.parse(text));
    // Compacting our own pretty output gives JSON.stringify's compact form, modulo Go's HTML escapes.
    const compact = goCompactJson(Buffer.from(text)).toString();
    assert.equal(JSON.parse(compact), JSON.parse(text));
  }), { numRuns: 200 });
});

test('stableJson sorts keys at every level', () => {
  assert.is(stableJson({ b: 1, a: { d: [2, { z: 0, y: 1 }], c: null } }), '{"a":{"c":null,"d":[2,{"y":1,"z":0}]},"b":1}');
});

// A two-layer image skopeo 1.9.3 wrote to a docker-archive (umoci-made config, trailing newline).
const CONFIG = Buffer.from('{"created":"2026-11-24T13:20:52.701279317Z","architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:f036c62d264db492a8fc2002cb21ee49981073ec9f3eada59e83c230bc169015","sha256:ddace5a1b8011549c79a94e9ba7c7dd20fa6f37d45174c869a0b19a7f99e88c6"]},"history":[{"created":"2026-11-24T13:20:52.718787923Z","created_by":"umoci repack"},{"created":"2026-11-24T13:20:52.728012116Z","created_by":"umoci config","empty_layer":true},{"created":"2026-11-24T13:20:52.745121585Z","created_by":"umoci repack"}]}\n');
const DIFF_IDS = ['sha256:f036c62d264db492a8fc2002cb21ee49981073ec9f3eada59e83c230bc169015', 'sha256:ddace5a1b8011549c79a94e9ba7c7dd20fa6f37d45174c869a0b19a7f99e88c6'];

test('legacy ids, layer json, manifest.json and repositories equal that skopeo archive', () => {
  const legacy = legacyLayers(CONFIG, DIFF_IDS);
  assert.equal(legacy.map((l) => l.id), [
    '27c04140b101b2d772d1c6b868eafcdf29748f989cff249093b9e5638534d3fc',
    'af1028fd69de9f1ccb854f16b38d04fd0bc6caddf1fad1e7e9ca06a33449a3a4',
  ]);
  assert.is(legacy[0]!.json.toString(), '{"id":"27c04140b101b2d772d1c6b868eafcdf29748f989cff249093b9e5638534d3fc"}');
  assert.is(legacy[1]!.json.toString(), '{"architecture":"amd64","config":{"Cmd":["/bin/sh"]},"container":null,"container_config":null,' +
    '"created":"2026-11-24T13:20:52.701279317Z","docker_version":null,"id":"af1028fd69de9f1ccb854f16b38d04fd0bc6caddf1fad1e7e9ca06a33449a3a4",' +
    '"os":"linux","parent":"27c04140b101b2d772d1c6b868eafcdf29748f989cff249093b9e5638534d3fc"}');
  const tags = [{ name: 'docker.io/library/test', tag: 'v1' }];
  assert.is(archiveManifest('sha256:eb5ba949094d10051d6bcd3bc8d891bdcf18180429ab6b4c31e581f5a9ce6468', DIFF_IDS, tags).toString(),
    '[{"Config":"eb5ba949094d10051d6bcd3bc8d891bdcf18180429ab6b4c31e581f5a9ce6468.json","RepoTags":["docker.io/library/test:v1"],' +
    '"Layers":["f036c62d264db492a8fc2002cb21ee49981073ec9f3eada59e83c230bc169015.tar","ddace5a1b8011549c79a94e9ba7c7dd20fa6f37d45174c869a0b19a7f99e88c6.tar"]}]');
  assert.is(archiveRepositories(legacy[1]!.id, tags).toString(),
    '{"docker.io/library/test":{"v1":"af1028fd69de9f1ccb854f16b38d04fd0bc6caddf1fad1e7e9ca06a33449a3a4"}}');
  assert.is(archiveRepositories(undefined, tags).toString(), '{}');
});

test('a repeated diff_id still gets distinct legacy ids (chain ids differ)', () => {
  const ids = legacyLayers(CONFIG, [DIFF_IDS[0]!, DIFF_IDS[0]!, DIFF_IDS[0]!]).map((l) => l.id);
  assert.is(new Set(ids).size, 3);
  assert.throws(() => legacyLayers(CONFIG, ['md5:abc']), /not a sha256 digest/);
});

test.run();
