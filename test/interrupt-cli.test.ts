// Interrupted work leaves no temp entries: SIGINT and SIGTERM remove them before exiting 130 and
// 143; after a SIGKILL the next command that takes a store lock removes them (dead owner pid),
// and gc reports their bytes. Real kills of the CLI bundle during a download that stalls.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hash } from '../lib/hash/index.js';
import { fileHandler, startServer, testBytes, type TestServer } from './helpers/http-servers.js';
import { run } from './helpers/run.js';
import { CLI_PATH } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const env = { PATH: process.env.PATH, HOME: '/nonexistent', XDG_CONFIG_HOME: '/nonexistent', NIX_CURL_FLAGS: '--retry 0' };
const BODY = testBytes(4 << 20, 3);
const SENT = 1 << 20;

function tempEntries(root: string): string[] {
  try {
    return readdirSync(join(root, 'nix/var/fetch-image/tmp'));
  } catch {
    return [];
  }
}

/** Starts a pinned url fetch that stalls after SENT bytes; resolves once they are on disk in its temp dir. */
async function stalledFetch(root: string, srv: TestServer): Promise<{ pid: number; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> }> {
  const child = spawn('node', [CLI_PATH, '--store', root, 'url', srv.url('/big.bin'), '--sha256', Hash.of('sha256', BODY).sri], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stderr })));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const mine = tempEntries(root).filter((n) => n.includes(`-${child.pid}-`));
    const out = mine.map((n) => join(root, 'nix/var/fetch-image/tmp', n, 'out'));
    if (out.some((f) => (statSync(f, { throwIfNoEntry: false })?.size ?? 0) >= SENT)) break;
    if (Date.now() > deadline) throw new Error(`the download never stalled in a temp dir: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { pid: child.pid!, exited };
}

test('SIGINT and SIGTERM remove the temp dir and exit 130 / 143; after SIGKILL the next locking command and gc clean up', async () => {
  const t = tempDir();
  const srv = await startServer(fileHandler({ data: BODY, plan: Array.from({ length: 5 }, () => ({ kind: 'stall' as const, after: SENT })) }));
  try {
    const root = join(t.path, 's');
    for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      const f = await stalledFetch(root, srv);
      process.kill(f.pid, signal);
      const r = await f.exited;
      assert.is(r.code, code, `${signal}: ${r.stderr}`);
      assert.match(r.stderr, `interrupted (${signal}): temporary files removed`);
      assert.equal(tempEntries(root), [], `${signal} leaves no temp entry`);
      assert.equal(readdirSync(join(root, 'nix/var/fetch-image/locks')), [], `${signal} leaves no lock`);
    }

    const killed = await stalledFetch(root, srv);
    process.kill(killed.pid, 'SIGKILL');
    await killed.exited;
    const left = tempEntries(root);
    assert.is(left.length, 1, 'a SIGKILL leaves its temp dir');
    const gc = await run('node', [CLI_PATH, '--store', root, '--json', 'store', 'gc', '--dry-run'], { env });
    const dry = JSON.parse(gc.stdout.toString()) as { tempDirs: string[]; tempBytes: number };
    assert.equal(dry.tempDirs, [join(root, 'nix/var/fetch-image/tmp', left[0]!)]);
    assert.ok(dry.tempBytes >= SENT, `gc counts its ${dry.tempBytes} bytes`);
    // Any command that takes a store lock removes it: here an unrelated add.
    const src = join(t.path, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'x');
    const add = await run('node', [CLI_PATH, '--store', root, 'store', 'add', src], { env });
    assert.is(add.code, 0, add.stderr);
    assert.equal(tempEntries(root), [], 'the next locking command removed the dead process\'s temp dir');
  } finally {
    await srv.close();
    t.remove();
  }
});

test.run();
