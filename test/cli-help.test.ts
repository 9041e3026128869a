// The shipped CLI (dist/bin, the bundle) as a user meets it: every command, found by walking the
// "Commands:" lists of --help, has help with examples; --version is package.json's; usage errors
// are one line with exit code 2.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from './helpers/run.js';
import { CLI_PATH } from './helpers/cli.js';

const CLI = CLI_PATH;

async function help(words: string[]): Promise<string> {
  const r = await run(process.execPath, [CLI, ...words, '--help']);
  assert.is(r.code, 0, `${words.join(' ')} --help: ${r.stderr}`);
  return r.stdout.toString();
}

/** The command words listed under "Commands:" (entries look like `fetch-image store add <path>`). */
function subcommands(text: string, words: string[]): string[] {
  const section = text.split(/\n\n/).find((block) => block.startsWith('Commands:'));
  if (!section) return [];
  const prefix = ['fetch-image', ...words].join(' ') + ' ';
  return section.split('\n').slice(1)
    .filter((line) => line.trimStart().startsWith(prefix))
    .map((line) => line.trimStart().slice(prefix.length).split(/\s/)[0]!)
    .filter((w) => w !== '' && !w.startsWith('<') && !w.startsWith('['));
}

test('every command has --help with examples', async () => {
  const leaves: string[] = [];
  const walk = async (words: string[]): Promise<void> => {
    const text = await help(words);
    const subs = subcommands(text, words);
    if (subs.length === 0) {
      assert.ok(/\nExamples:\n/.test(text), `${words.join(' ')} --help has no examples:\n${text}`);
      leaves.push(words.join(' '));
    }
    for (const s of subs) await walk([...words, s]);
  };
  await walk([]);
  for (const expected of ['hash path', 'hash convert', 'nar dump', 'store add', 'store gc', 'url', 'pull', 'mirror export', 'mirror sync']) {
    assert.ok(leaves.includes(expected), `'${expected}' not reached from --help (found: ${leaves.join(', ')})`);
  }
});

test('--version prints the package version', async () => {
  const pkg = JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { version: string };
  const r = await run(process.execPath, [CLI, '--version']);
  assert.is(r.code, 0);
  assert.is(r.stdout.toString().trim(), pkg.version);
});

test('a usage error is one line, exit 2', async () => {
  const r = await run(process.execPath, [CLI, 'store', 'add']);
  assert.is(r.code, 2);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^error: .*see --help/);
});

test.run();
