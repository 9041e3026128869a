/** Pure parts of lib/fetch: curl flags, proxy selection, no_proxy, Retry-After, redaction. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CURL_FLAGS_TABLE, matchesNoProxy, netrcLookup, parseCurlFlags, parseNetrc, parseProxyUrl, parseRetryAfter, quoteShellWord, redactText, redactUrl,
  resolveOptions, retryDelayMs, selectProxy, splitSecretCurlOpts, splitShellWords,
} from '../lib/fetch/index.js';
import { tempDir } from './helpers/tmp.js';

test('shell word splitting handles quotes and escapes', () => {
  assert.equal(splitShellWords(`  -H 'X-A: one two'  -H "X-B: \\"q\\" \\$x" a\\ b ''  `), ['-H', 'X-A: one two', '-H', 'X-B: "q" $x', 'a b', '']);
  assert.equal(splitShellWords('a\tb\nc'), ['a', 'b', 'c']);
  assert.equal(splitShellWords(`it'll'"be"`), ['itllbe']);
  assert.throws(() => splitShellWords(`-H 'oops`, 'NIX_CURL_FLAGS'), /^unterminated single quote in NIX_CURL_FLAGS$/);
  assert.throws(() => splitShellWords(`-H "oops`), /unterminated double quote/);
});

test('every supported curl flag parses', () => {
  const s = parseCurlFlags(`-k --retry 3 --max-time 2.5 --connect-timeout 7 -H 'X-A: 1' --header "X-B: 2" -u alice:s3cret --cacert /etc/ca.pem -x socks5h://p:1080 --noproxy 'a.example,b' -L -C - --continue-at - --location --insecure -m 4`);
  assert.equal(s, {
    headers: [['X-A', '1'], ['X-B', '2']],
    insecure: true,
    retries: 3,
    maxTimeMs: 4000,
    connectTimeoutMs: 7000,
    user: 'alice:s3cret',
    caFile: '/etc/ca.pem',
    proxy: 'socks5h://p:1080',
    noProxy: 'a.example,b',
    location: true,
    continueAt: true,
  });
  // getopt-style short forms: grouped booleans and attached arguments.
  const g = parseCurlFlags(`-kL -HX-C:\\ y -xhttp://q:3128 --proxy ''`);
  assert.equal(g.headers, [['X-C', 'y']]);
  assert.is(g.insecure, true);
  assert.is(g.location, true);
  assert.is(g.proxy, '');
  // The table names each flag the parser accepts.
  const longs = CURL_FLAGS_TABLE.map((f) => f.long).sort();
  assert.equal(longs, ['--cacert', '--connect-timeout', '--continue-at', '--header', '--insecure', '--location', '--max-time', '--noproxy', '--proxy', '--proxy-user', '--retry', '--user']);
  for (const f of CURL_FLAGS_TABLE) assert.ok(f.effect.length > 10, f.long);
});

test('unsupported curl flags are refused by name', () => {
  assert.throws(() => parseCurlFlags('--foo', 'NIX_CURL_FLAGS'), (e: Error) => e.message === `unsupported curl option '--foo' in NIX_CURL_FLAGS`);
  assert.throws(() => parseCurlFlags('-k --proxy-insecure', 'curlOpts'), (e: Error) => e.message === `unsupported curl option '--proxy-insecure' in curlOpts`);
  assert.throws(() => parseCurlFlags('-ks', 'NIX_CURL_FLAGS'), (e: Error) => e.message === `unsupported curl option '-s' in NIX_CURL_FLAGS`);
  assert.throws(() => parseCurlFlags('--retry=3', 'NIX_CURL_FLAGS'), (e: Error) => e.message === `unsupported curl option '--retry=…' in NIX_CURL_FLAGS`);
  assert.throws(() => parseCurlFlags('-C 100', 'NIX_CURL_FLAGS'), /^unsupported curl option '-C 100' in NIX_CURL_FLAGS: only '-C -'/);
  assert.throws(() => parseCurlFlags('--retry many'), /invalid value 'many' for curl option '--retry'/);
  assert.throws(() => parseCurlFlags('--max-time'), /curl option '--max-time' in curl flags needs an argument/);
  assert.throws(() => parseCurlFlags('-u alice'), /needs USER:PASSWORD/);
  assert.throws(() => parseCurlFlags(`-H 'NoColon'`), /invalid header/);
  assert.throws(() => parseCurlFlags(`-H 'Authorization: Bearer' t0ken-value`, '--curl-opts'), (e: Error) => e.message === `unexpected argument after curl option '-H' in --curl-opts: only options are allowed (quote a value that has spaces)`);
  assert.throws(() => parseCurlFlags('http://u:pw@host/x'), (e: Error) => e.message === `unexpected argument 'http://***@host/x' in curl flags: only options are allowed`);
});

test('options: explicit > curlOpts > NIX_CURL_FLAGS > env > defaults', () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir.path, 'a.pem'), 'A');
    writeFileSync(join(dir.path, 'b.pem'), 'B');
    const env = {
      NIX_CURL_FLAGS: `--retry 2 --connect-timeout 3 -H 'X-Env: 1' -x http://envflag:1`,
      NIX_CONNECT_TIMEOUT: '9',
      NIX_SSL_CERT_FILE: join(dir.path, 'a.pem'),
      SSL_CERT_FILE: join(dir.path, 'b.pem'),
    };
    let r = resolveOptions({ env });
    assert.is(r.retries, 2);
    assert.is(r.connectTimeoutMs, 3000);
    assert.is(r.ca, 'A');
    assert.equal(r.proxy, { proxy: 'http://envflag:1' });
    r = resolveOptions({ env, curlOpts: '--retry 4 -u u:p -H "X-Opt: 2"', retries: 7 });
    assert.is(r.retries, 7);
    assert.equal(r.headers, [['X-Env', '1'], ['X-Opt', '2'], ['Authorization', `Basic ${Buffer.from('u:p').toString('base64')}`]]);
    r = resolveOptions({ env: { NIX_CONNECT_TIMEOUT: '9', SSL_CERT_FILE: join(dir.path, 'b.pem') } });
    assert.is(r.connectTimeoutMs, 9000);
    assert.is(r.ca, 'B');
    r = resolveOptions({ env: {} });
    assert.is(r.connectTimeoutMs, 15000);
    assert.is(r.retries, 5);
    assert.is(r.maxRedirects, 20);
    assert.is(r.totalTimeoutMs, undefined);
    assert.throws(() => resolveOptions({ env: { NIX_CURL_FLAGS: '--compressed' } }), (e: Error) => e.message === `unsupported curl option '--compressed' in NIX_CURL_FLAGS`);
    assert.throws(() => resolveOptions({ env: {}, caFile: join(dir.path, 'missing.pem') }), /cannot read CA bundle '.*missing\.pem': ENOENT/);
  } finally {
    dir.remove();
  }
});

test('no_proxy matching: hosts, domain suffixes, host:port, IPs, CIDR, *', () => {
  const cases: Array<[string, number, string, boolean]> = [
    ['example.com', 80, 'example.com', true],
    ['www.example.com', 80, 'example.com', true],
    ['www.example.com', 80, '.example.com', true],
    ['example.com', 80, '.example.com', true],
    ['a.b.example.com', 443, '*.example.com', true],
    ['notexample.com', 80, 'example.com', false],
    ['example.com.evil', 80, 'example.com', false],
    ['EXAMPLE.com', 80, 'Example.COM', true],
    ['example.com', 8080, 'example.com:8080', true],
    ['example.com', 80, 'example.com:8080', false],
    ['10.1.2.3', 80, '10.1.2.3', true],
    ['10.1.2.4', 80, '10.1.2.3', false],
    ['10.1.2.3', 80, '10.0.0.0/8', true],
    ['11.1.2.3', 80, '10.0.0.0/8', false],
    ['127.0.0.1', 5000, '127.0.0.1:5000', true],
    ['127.0.0.1', 5001, '127.0.0.1:5000', false],
    ['::1', 80, '::1', true],
    ['[::1]', 80, '[::1]:80', true],
    ['::1', 81, '[::1]:80', false],
    ['0:0:0:0:0:0:0:1', 80, '::1', true],
    ['fd00::5', 80, 'fd00::/8', true],
    ['anything.org', 80, '*', true],
    ['anything.org', 80, 'foo, bar ,*', true],
    ['bar', 80, 'foo, bar', true],
    ['example.com', 80, '', false],
    ['example.com', 80, ' , ,', false],
  ];
  for (const [host, port, list, want] of cases) {
    assert.is(matchesNoProxy(host, port, list), want, `${host}:${port} vs '${list}'`);
  }
});

test('proxy selection follows curl: lower case wins, HTTP_PROXY ignored, all_proxy fallback', () => {
  const u = (s: string): URL => new URL(s);
  const pick = (url: string, env: NodeJS.ProcessEnv, o = {}): string | null => selectProxy(u(url), env, o)?.href ?? null;
  assert.is(pick('http://h/x', { http_proxy: 'http://lower:1', HTTP_PROXY: 'http://upper:2' }), 'http://lower:1');
  assert.is(pick('http://h/x', { HTTP_PROXY: 'http://upper:2' }), null);
  assert.is(pick('https://h/x', { HTTPS_PROXY: 'http://upper:2' }), 'http://upper:2');
  assert.is(pick('https://h/x', { https_proxy: 'lower:3', HTTPS_PROXY: 'http://upper:2' }), 'http://lower:3');
  assert.is(pick('https://h/x', { ALL_PROXY: 'socks5://all:4' }), 'socks5://all:4');
  assert.is(pick('https://h/x', { all_proxy: 'socks5h://a:5', ALL_PROXY: 'socks5://b:6' }), 'socks5h://a:5');
  assert.is(pick('http://h/x', { http_proxy: 'http://p:1', no_proxy: 'h' }), null);
  assert.is(pick('http://h/x', { http_proxy: 'http://p:1', no_proxy: 'other', NO_PROXY: 'h' }), 'http://p:1');
  assert.is(pick('http://h/x', { http_proxy: 'http://p:1', NO_PROXY: 'h' }), null);
  assert.is(pick('http://h/x', { http_proxy: 'http://p:1', no_proxy: 'h' }, { noProxy: '' }), 'http://p:1');
  assert.is(pick('http://h/x', { http_proxy: 'http://p:1' }, { proxy: '' }), null);
  assert.is(pick('https://h/x', {}, { proxy: 'socks4://s:7' }), 'socks4://s:7');
  assert.is(pick('https://h:8443/x', { https_proxy: 'http://p:1', no_proxy: 'h:8443' }), null);
});

test('proxy URLs parse like curl: default scheme http, default port 1080, socks:// is SOCKS4', () => {
  assert.equal(parseProxyUrl('proxy.local'), { kind: 'http', host: 'proxy.local', port: 1080, href: 'http://proxy.local:1080' });
  assert.is(parseProxyUrl('http://p:80').port, 80);
  assert.is(parseProxyUrl('https://p').port, 443);
  assert.is(parseProxyUrl('socks://p').kind, 'socks4');
  assert.is(parseProxyUrl('socks4a://p:9').kind, 'socks4a');
  assert.is(parseProxyUrl('SOCKS5H://p:9').kind, 'socks5h');
  const withAuth = parseProxyUrl('http://us%40er:p%3Ass@[::1]:3128');
  assert.is(withAuth.host, '::1');
  assert.is(withAuth.username, 'us@er');
  assert.is(withAuth.password, 'p:ss');
  assert.throws(() => parseProxyUrl('ftp://u:secret@p:21'), (e: Error) => e.message === `unsupported proxy scheme 'ftp' in proxy 'ftp://***@p/'`);
});

test('Retry-After parsing and backoff', () => {
  const now = Date.parse('2024-01-01T00:00:00Z');
  assert.is(parseRetryAfter('3', now), 3000);
  assert.is(parseRetryAfter(' 0 ', now), 0);
  assert.is(parseRetryAfter('Mon, 01 Jan 2024 00:00:05 GMT', now), 5000);
  assert.is(parseRetryAfter('Sun, 31 Dec 2023 00:00:05 GMT', now), 0);
  assert.is(parseRetryAfter('soon', now), undefined);
  assert.is(parseRetryAfter('-1', now), undefined);
  assert.is(parseRetryAfter(undefined, now), undefined);
  assert.is(retryDelayMs(1, 100, undefined, () => 0), 50);
  assert.is(retryDelayMs(1, 100, undefined, () => 1), 100);
  assert.is(retryDelayMs(4, 100, undefined, () => 1), 800);
  assert.is(retryDelayMs(30, 100, undefined, () => 1), 6400);
  assert.is(retryDelayMs(2, 100, 1234), 1234);
});

test('credentials are redacted from URLs and text', () => {
  assert.is(redactUrl('https://alice:s3cret@host/p?X-Amz-Signature=abc&x=1'), 'https://***@host/p?X-Amz-Signature=***&x=1');
  assert.is(redactUrl('http://host/plain'), 'http://host/plain');
  const t = redactText('Authorization: Basic YWxpY2U6czNjcmV0 via http://bob:pw@proxy:1 Bearer abcdefghijklmnop');
  assert.not.match(t, /YWxpY2U6czNjcmV0|bob|pw@|abcdefghijklmnop/);
});

test('credentials split off curl flags: the stored part as given when there are none, both parts parse back to the whole', () => {
  const plain = `-k  --retry 3 -H 'X-A: 1' -x http://proxy:3128`;
  assert.equal(splitSecretCurlOpts(plain), { stored: plain, secret: '' }, 'byte-identical without credentials');
  const text = `-kL -u alice:s3cret --retry 2 -H 'Authorization: Bearer t0k' -H "cookie: a=b" -HProxy-Authorization:\\ Basic\\ eA== -H 'X-Keep: it is' -U bob:pw -x http://carol:p%40ss@proxy:3128 --user=x`;
  assert.throws(() => splitSecretCurlOpts(text, '--curl-opts'), (e: Error) => e.message === `unsupported curl option '--user=…' in --curl-opts`, 'a refused --user=… does not echo its value');
  const given = text.replace(' --user=x', '');
  const { stored, secret } = splitSecretCurlOpts(given);
  assert.is(stored, `-k -L --retry 2 -H 'X-Keep: it is' -x http://proxy:3128`);
  assert.not.match(stored, /s3cret|t0k|a=b|eA==|pw|p%40ss|carol/);
  const whole = parseCurlFlags(given);
  const split = parseCurlFlags(`${stored} ${secret}`);
  assert.equal({ ...split, headers: [...split.headers].sort() }, { ...whole, proxy: 'http://proxy:3128', proxyUser: 'carol:p@ss', headers: [...whole.headers].sort() });
  // Only the -x that stays in effect keeps its credentials.
  assert.equal(splitSecretCurlOpts('-x http://a:1@p1:1 -x http://p2:2'), { stored: '-x http://p1:1 -x http://p2:2', secret: '' });
  assert.is(quoteShellWord(`it's`), `'it'\\''s'`);
  assert.equal(splitShellWords(quoteShellWord(`it's "x" $y`)), [`it's "x" $y`]);
  assert.is(quoteShellWord(''), "''");
});

test('proxy credentials: --proxy-user and -H Proxy-Authorization are for the proxy, never a server header', () => {
  const r = resolveOptions({ env: {}, curlOpts: `-x socks5://p:1080 --proxy-user 'u s:p@w' -H 'Proxy-Authorization: Basic eA==' -H 'X-A: 1'` });
  assert.equal(r.headers, [['X-A', '1']]);
  assert.is(r.proxyAuthorization, 'Basic eA==');
  const chosen = selectProxy(new URL('http://example.org/'), {}, r.proxy);
  assert.equal([chosen?.username, chosen?.password, chosen?.href], ['u s', 'p@w', 'socks5://u%20s:p%40w@p:1080']);
  const envProxy = selectProxy(new URL('https://example.org/'), { https_proxy: 'http://old:x@q:3128' }, { proxyUser: 'new' });
  assert.equal([envProxy?.username, envProxy?.password], ['new', undefined]);
});

test('netrc: machine, default, quoted values, macdef and comments; errors name the line, never a token', () => {
  const entries = parseNetrc([
    '# a comment with password inside',
    'machine Example.ORG login alice password "s3 \\"cret"',
    'macdef init',
    'cd /pub',
    'machine ignored',
    '',
    'machine other.example login bob',
    'password pw2 account acc',
    'default login anon password anon@',
  ].join('\n'), 'test');
  assert.equal(netrcLookup(entries, 'example.org'), { machine: 'example.org', login: 'alice', password: 's3 "cret' });
  assert.equal(netrcLookup(entries, 'other.example'), { machine: 'other.example', login: 'bob', password: 'pw2' });
  assert.equal(netrcLookup(entries, 'elsewhere'), { machine: null, login: 'anon', password: 'anon@' });
  assert.is(entries.some((e) => e.machine === 'ignored'), false, 'a macdef body is not parsed');
  assert.is(netrcLookup(parseNetrc('machine a login x password y', 'f'), 'b'), undefined);
  assert.throws(() => parseNetrc('machine a\nlogin x passwd secret-value', '/etc/n'), (e: Error) => e.message === 'netrc file /etc/n: line 2: expected machine, default, login, password, account or macdef');
  assert.throws(() => parseNetrc('password orphan', 'f'), /line 1: 'password' before any 'machine'/);
});

test.run();
