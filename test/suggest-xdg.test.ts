// The pure helpers behind the CLI's typo hints and per-user directories: the edit distance
// (with adjacent swaps counted once), the suggestion rule, and the XDG base-directory rule.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { editDistance, suggest } from '../lib/text/index.js';
import { cacheHome, configHome, dataHome, homeDir, runtimeDir } from '../lib/xdg/index.js';

test('editDistance: insertions, deletions, substitutions and adjacent swaps cost 1 each', () => {
  const vectors: Array<[string, string, number]> = [
    ['', '', 0], ['store', 'store', 0], ['', 'abc', 3], ['abc', '', 3],
    ['stroe', 'store', 1], ['mirorr', 'mirror', 1], ['hahs', 'hash', 1], ['bash', 'hash', 1],
    ['perl', 'pull', 2], ['kitten', 'sitting', 3], ['ca', 'abc', 3], ['ubuntu', 'build', 4],
  ];
  for (const [a, b, d] of vectors) {
    assert.is(editDistance(a, b), d, `${a} → ${b}`);
    assert.is(editDistance(b, a), d, `${b} → ${a}`);
  }
});

test('suggest: within 1 edit of names up to 4 letters, 2 of longer ones; case-insensitive; nearest wins', () => {
  const names = ['hash', 'nar', 'store', 'url', 'pull', 'mirror', 'help', 'version'];
  assert.is(suggest('stroe', names), 'store');
  assert.is(suggest('sotre', names), 'store');
  assert.is(suggest('stor', names), 'store');
  assert.is(suggest('STORE', names), 'store');
  assert.is(suggest('mirorr', names), 'mirror');
  assert.is(suggest('mirrrr', names), 'mirror');
  assert.is(suggest('hahs', names), 'hash');
  assert.is(suggest('hepl', names), 'help');
  assert.is(suggest('versoin', names), 'version');
  assert.is(suggest('ulr', names), 'url');
  for (const image of ['ubuntu', 'perl', 'node', 'alpine', 'nats', 'dart', 'haxe', 'redis', 'nginx', 'rust', 'lua']) {
    assert.is(suggest(image, names), undefined, image);
  }
  assert.is(suggest('substituter', ['substituters', 'trustedPublicKeys', 'requireSigs']), 'substituters');
});

test('xdg: unset, empty or relative variables are ignored; HOME falls back to the passwd entry', () => {
  const passwd = userInfo().homedir;
  assert.is(homeDir({ HOME: '/h' }), '/h');
  for (const HOME of [undefined, '', 'relative/home', './h']) {
    const env = HOME === undefined ? {} : { HOME };
    assert.is(homeDir(env), passwd, String(HOME));
    assert.is(dataHome(env), join(passwd, '.local', 'share'));
  }
  assert.is(dataHome({ HOME: '/h', XDG_DATA_HOME: '/d' }), '/d');
  assert.is(dataHome({ HOME: '/h', XDG_DATA_HOME: 'd' }), '/h/.local/share');
  assert.is(dataHome({ HOME: '/h', XDG_DATA_HOME: '' }), '/h/.local/share');
  assert.is(configHome({ HOME: '/h', XDG_CONFIG_HOME: 'c' }), '/h/.config');
  assert.is(configHome({ HOME: '/h', XDG_CONFIG_HOME: '/c' }), '/c');
  assert.is(cacheHome({ HOME: '/h', XDG_CACHE_HOME: '.' }), '/h/.cache');
  assert.is(runtimeDir({ XDG_RUNTIME_DIR: 'run' }), undefined);
  assert.is(runtimeDir({ XDG_RUNTIME_DIR: '/run/user/0' }), '/run/user/0');
});

test.run();
