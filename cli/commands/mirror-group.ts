import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';

/**
 * The `mirror` command group around the given subcommands. The full group (cli/commands/mirror.ts)
 * loads every cache, bundle and server module; `mirror sync` needs none of them, and app.ts
 * builds the group with sync alone for it (~15 ms of start-up before the first request).
 */
export function mirrorGroup(subcommands: (y: Argv<GlobalArgs>) => Argv<GlobalArgs>): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'mirror <command>',
    describe: 'Offline mirroring: Nix binary caches (export, import, serve, substitute), nix-store --export bundles, registry sync',
    builder: (y) => subcommands(y).demandCommand(1, 'choose one of: keygen, export, import, substitute, serve, bundle, unbundle, config, sync'),
    handler: () => undefined,
  };
}
