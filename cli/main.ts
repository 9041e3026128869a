#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { hashCommand } from './commands/hash.js';
import { narCommand } from './commands/nar.js';
import { storeCommand } from './commands/store.js';
import { EXIT, UserError } from './errors.js';

function fail(message: string, code: number): never {
  process.stderr.write(`error: ${message.split('\n')[0]}\n` + (message.includes('\n') ? message.split('\n').slice(1).join('\n') + '\n' : ''));
  process.exit(code);
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory', EACCES: 'permission denied', EEXIST: 'already exists',
  ENOTDIR: 'not a directory', EISDIR: 'is a directory', ENOSPC: 'no space left on device', EROFS: 'read-only file system',
};

/** One line: for file-system errors, the path and what went wrong, without Node's syscall noise. */
function describeError(err: NodeJS.ErrnoException): string {
  if (err.code && err.path && ERRNO_TEXT[err.code]) return `${err.path}: ${ERRNO_TEXT[err.code]}`;
  return err.message ?? String(err);
}

async function main(): Promise<void> {
  await yargs(hideBin(process.argv))
    .scriptName('fetch-image')
    .usage('$0 <command> [options]\n\nFixed-output fetcher and Nix-compatible store for container images and downloads.')
    .option('store', { type: 'string', global: true, describe: 'physical store root (env FETCH_IMAGE_STORE; default $XDG_DATA_HOME/fetch-image)' })
    .option('json', { type: 'boolean', global: true, describe: 'machine-readable output on stdout' })
    .option('quiet', { alias: 'q', type: 'boolean', global: true, describe: 'no progress or notes on stderr' })
    .command(hashCommand)
    .command(narCommand)
    .command(storeCommand)
    .demandCommand(1, 'give a command (see --help)')
    .strict()
    .recommendCommands()
    .epilogue('Exit codes: 0 ok, 1 failure, 2 usage error, 3 store verify found problems, 102 hash mismatch.')
    .fail((msg, err) => {
      if (err) throw err;
      fail(`${msg} (see --help)`, EXIT.usage);
    })
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .parseAsync();
}

main().catch((e: unknown) => {
  if (e instanceof UserError) fail(e.message, e.exitCode);
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'EPIPE') process.exit(EXIT.ok);
  fail(describeError(err), EXIT.failure);
});
