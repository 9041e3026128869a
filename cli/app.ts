import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { hashCommand } from './commands/hash.js';
import { narCommand } from './commands/nar.js';
import { storeCommand } from './commands/store.js';
import { urlCommand } from './commands/url.js';
import { makeMirrorCommand } from './commands/mirror.js';
import { syncCommand } from './commands/sync.js';
import { resolveImageRef } from '../lib/builders/index.js';
import { defaultPullCommand, pullCommand } from './commands/pull.js';
import { EXIT, UserError } from './errors.js';

/** The full command-line interface. */
export async function runApp(): Promise<void> {
  await yargs(hideBin(process.argv))
    .scriptName('fetch-image')
    .usage('$0 <command> [options]\n\nFixed-output fetcher and Nix-compatible store for container images and downloads.')
    .option('store', { type: 'string', global: true, describe: 'physical store root (env FETCH_IMAGE_STORE; default $XDG_DATA_HOME/fetch-image)' })
    .option('json', { type: 'boolean', global: true, describe: 'machine-readable output on stdout' })
    .option('quiet', { alias: 'q', type: 'boolean', global: true, describe: 'no progress or notes on stderr' })
    .command(hashCommand)
    .command(narCommand)
    .command(storeCommand)
    .command(urlCommand)
    .command(pullCommand)
    .command(makeMirrorCommand({ resolveRef: resolveImageRef, extraCommands: [syncCommand] }))
    .command(defaultPullCommand)
    .strict()
    .recommendCommands()
    .epilogue('Exit codes: 0 ok, 1 failure, 2 usage error, 3 store verify found problems, 102 hash mismatch.')
    .fail((msg, err) => {
      if (err) throw err;
      throw new UserError(`${msg} (see --help)`, EXIT.usage);
    })
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .parseAsync();
}

