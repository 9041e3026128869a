import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Hash, decodeNix32, encodeNix32, parseHash } from '../lib/hash/index.js';
import fc from 'fast-check';

test('nix32 of sha256("abc") matches SPEC vector', () => {
  assert.is(Hash.of('sha256', 'abc').nix32, '1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s');
});

test('nix32 round-trips for every digest size', () => {
  fc.assert(fc.property(fc.constantFrom(16, 20, 32, 64), fc.infiniteStream(fc.integer({ min: 0, max: 255 })), (size, bytes) => {
    const raw = Uint8Array.from(bytes.take(size));
    return Buffer.from(decodeNix32(encodeNix32(raw), size)).equals(Buffer.from(raw));
  }));
});

test('nix32 decoding rejects a non-zero carry and foreign characters', () => {
  // 52 chars hold 260 bits; a leading 'z' sets bits beyond 256.
  assert.throws(() => decodeNix32('z' + '0'.repeat(51), 32), /more bits/);
  assert.throws(() => decodeNix32('e' + '0'.repeat(51), 32), /invalid character 'e'/);
});

test('all encodings parse back to the same hash', () => {
  const h = Hash.of('sha256', 'mycontent\n');
  for (const form of [h.sri, h.prefixed('base16'), h.prefixed('nix32'), h.prefixed('base64'), `sha256:${h.base16.toUpperCase()}`]) {
    assert.ok(parseHash(form).equals(h), form);
  }
  assert.ok(parseHash(h.base16, 'sha256').equals(h));
  assert.ok(parseHash(h.nix32, 'sha256').equals(h));
  assert.ok(parseHash(h.base64, 'sha256').equals(h));
});

test('md5, sha1 and sha512 have the right lengths in every encoding', () => {
  for (const [algo, hex, n32, b64] of [['md5', 32, 26, 24], ['sha1', 40, 32, 28], ['sha512', 128, 103, 88]] as const) {
    const h = Hash.of(algo, 'x');
    assert.is(h.base16.length, hex);
    assert.is(h.nix32.length, n32);
    assert.is(h.base64.length, b64);
    assert.ok(parseHash(h.prefixed('nix32')).equals(h));
  }
});

test('parse errors say what was wrong', () => {
  assert.throws(() => parseHash('sha256:abc'), /has 3 characters: a sha256 hash is 64 \(base16\), 52 \(nix32\) or 44 \(base64\)/);
  assert.throws(() => parseHash('sha3:' + 'a'.repeat(64)), /unknown hash algorithm 'sha3'/);
  assert.throws(() => parseHash('sha256-AAAA'), /invalid SRI hash/);
  assert.throws(() => parseHash('a'.repeat(64)), /does not say its algorithm/);
  assert.throws(() => parseHash('sha256:' + 'g'.repeat(64)), /invalid base16/);
});

test.run();
