import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { GlobalArgs } from './context.js';
import { EXIT, UserError } from './errors.js';

/** Adds one command to the parser (a function, as each command has its own argument type). */
type Register = (y: Argv<GlobalArgs>) => Argv<GlobalArgs>;

/**
 * Each command's module, loaded only when that command runs: together they pull in every
 * library (registry, mirror, sync, compressors), which costs more start-up than most commands'
 * own work. Only help with no command loads them all.
 */
const COMMANDS: Record<string, (args: readonly string[]) => Promise<Register>> = {
  hash: async () => { const { hashCommand } = await import('./commands/hash.js'); return (y) => y.command(hashCommand); },
  nar: async () => { const { narCommand } = await import('./commands/nar.js'); return (y) => y.command(narCommand); },
  store: async () => { const { storeCommand } = await import('./commands/store.js'); return (y) => y.command(storeCommand); },
  url: async () => { const { urlCommand } = await import('./commands/url.js'); return (y) => y.command(urlCommand); },
  pull: async () => { const { pullCommand } = await import('./commands/pull.js'); return (y) => y.command(pullCommand); },
  build: async () => { const { buildCommand } = await import('./commands/build.js'); return (y) => y.command(buildCommand); },
  inspect: async () => { const { inspectCommand } = await import('./commands/inspect.js'); return (y) => y.command(inspectCommand); },
  mirror: async (args) => {
    if (commandWords(args)[1] === 'sync') {
      // The registry sync uses none of the cache modules the rest of the group loads.
      const [{ mirrorGroup }, { syncCommand }] = await Promise.all([import('./commands/mirror-group.js'), import('./commands/sync.js')]);
      return (y) => y.command(mirrorGroup((yy) => yy.command(syncCommand)));
    }
    const [{ makeMirrorCommand }, { syncCommand }, { resolveImageRef }] = await Promise.all([
      import('./commands/mirror.js'), import('./commands/sync.js'), import('../lib/builders/resolve-ref.js'),
    ]);
    const mirror = makeMirrorCommand({ resolveRef: resolveImageRef, extraCommands: [syncCommand] });
    return (y) => y.command(mirror);
  },
};
const defaultCommand = async (): Promise<Register> => {
  const { defaultPullCommand } = await import('./commands/pull.js');
  return (y) => y.command(defaultPullCommand);
};

/** The words that are neither options nor the value of `--store`: the command and its subcommand, or the default command's image. */
function commandWords(args: readonly string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a === '--store') i++;
    else if (!a.startsWith('-')) words.push(a);
  }
  return words;
}

async function commandsFor(args: readonly string[]): Promise<Register[]> {
  const word = commandWords(args)[0];
  if (word === undefined) return Promise.all([...Object.values(COMMANDS), defaultCommand].map((load) => load(args)));
  return [await (COMMANDS[word] ?? defaultCommand)(args)];
}

/**
 * The version in package.json, two levels up from this module both in tsc's dist/cli and in the
 * bundle's dist/bin (yargs' own lookup starts from the entry file and misses it in the bundle).
 */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * yargs renders a command's whole help text just after starting its handler, in case a later
 * failure wants to print it (~20 ms of string measuring before the first request goes out). Our
 * failures print one line, never the help, so the cache is dropped. `--help` itself is unaffected.
 */
function skipHelpCache(y: Argv<GlobalArgs>): void {
  const internal = y as unknown as { getInternalMethods?: () => { getUsageInstance(): { cacheHelpMessage: () => void } } };
  const usage = internal.getInternalMethods?.().getUsageInstance();
  if (usage) usage.cacheHelpMessage = () => undefined;
}

/** The full command-line interface. */
export async function runApp(): Promise<void> {
  const args = hideBin(process.argv);
  const registers = await commandsFor(args);
  const base: Argv<GlobalArgs> = yargs(args)
    .scriptName('fetch-image')
    .usage('$0 <command> [options]\n\nFixed-output fetcher and Nix-compatible store for container images and downloads.')
    .option('store', { type: 'string', global: true, describe: 'physical store root (env FETCH_IMAGE_STORE; default $XDG_DATA_HOME/fetch-image)' })
    .option('json', { type: 'boolean', global: true, describe: 'machine-readable output on stdout' })
    .option('quiet', { alias: 'q', type: 'boolean', global: true, describe: 'no progress or notes on stderr' });
  skipHelpCache(base);
  await registers.reduce((y, register) => register(y), base)
    .strict()
    .recommendCommands()
    .epilogue('Exit codes: 0 ok, 1 failure, 2 usage error, 3 store verify found problems, 102 hash mismatch.')
    .fail((msg, err) => {
      if (err) throw err;
      throw new UserError(`${msg} (see --help)`, EXIT.usage);
    })
    .help()
    .alias('help', 'h')
    .version(packageVersion())
    .wrap(Math.min(110, process.stdout.columns || 100))
    .parseAsync();
}

