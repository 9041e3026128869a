// The suite's own watchdog: a child that hangs is killed and its test fails with where it was
// blocked, instead of stalling CI.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from './helpers/run.js';

test('a hung child is killed after its time, with its threads and live handles described', async () => {
  const r = await run('node', ['-e', 'setInterval(() => {}, 1000)'], { hangAfterMs: 1500 });
  assert.is(r.signal, 'SIGKILL');
  assert.match(r.stderr, /still running after 1\.5 s; killed as hung/);
  assert.match(r.stderr, /wchan=/);
  assert.match(r.stderr, /active libuv handles: .*timer/, 'the diagnostic report names the interval keeping it alive');
});

test('a child that finishes in time is left alone', async () => {
  const r = await run('node', ['-e', 'process.stdout.write("ok")'], { hangAfterMs: 30_000 });
  assert.is(r.code, 0);
  assert.is(r.stdout.toString(), 'ok');
  assert.is(r.stderr, '');
});

test.run();
