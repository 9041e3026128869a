import { readFileSync } from 'node:fs';
import yargs, { type Argv, type MiddlewareFunction } from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { GlobalArgs } from './context.js';
import { suggest } from '../lib/text/index.js';
import { checkOptionValues, normaliseArgs, type OptionTable } from './argv.js';
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
  lock: async () => { const { lockCommand } = await import('./commands/lock.js'); return (y) => y.command(lockCommand); },
  audit: async () => { const { auditCommand } = await import('./commands/audit.js'); return (y) => y.command(auditCommand); },
  diff: async () => { const { diffCommand } = await import('./commands/diff.js'); return (y) => y.command(diffCommand); },
  build: async () => { const { buildCommand } = await import('./commands/build.js'); return (y) => y.command(buildCommand); },
  inspect: async () => { const { inspectCommand } = await import('./commands/inspect.js'); return (y) => y.command(inspectCommand); },
  mirror: async (args) => {
    if (commandWords(args).words[1] === 'sync') {
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

/**
 * Names a bare first word is checked against before it is taken as an image to pull: the
 * commands and yargs' own `help` and `version` (so that their typos are never pulled as images).
 */
const RESERVED_WORDS = ['help', 'version'];

/** What the command line asks for, decided from its words before any command module is loaded. */
type Route =
  | { kind: 'command'; name: string }
  | { kind: 'pull' }
  | { kind: 'help'; words: string[] }
  | { kind: 'version' }
  | { kind: 'bare' }
  | { kind: 'all' };

/** Global options that take no value: the word after them is never theirs. */
const HELP_FLAGS: ReadonlySet<string> = new Set(['--help', '-h', '--version']);
const GLOBAL_FLAGS: ReadonlySet<string> = new Set(['--json', '--quiet', '-q', ...HELP_FLAGS]);

/**
 * The words that are neither options nor the value of `--store`: the command and its subcommand,
 * or the default command's image. A word right after another option before the first of these
 * may be that option's value (`fetch-image --name store ubuntu`, `--substituter S REF`): it is
 * not taken as a command, only counted, so that such a line goes to the default command.
 */
function commandWords(args: readonly string[]): { words: string[]; afterDashes: boolean; maybeValues: number } {
  const words: string[] = [];
  let maybeValues = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return { words: [...words, ...args.slice(i + 1)], afterDashes: words.length === 0, maybeValues };
    if (a === '--store') i++;
    else if (!a.startsWith('-')) words.push(a);
    else if (words.length === 0 && !a.includes('=') && !GLOBAL_FLAGS.has(a) && i + 1 < args.length && !args[i + 1]!.startsWith('-')) {
      maybeValues++;
      i++;
    }
  }
  return { words, afterDashes: false, maybeValues };
}

/**
 * The rule for the first word (README, "Commands and images"): a command runs; `help [words]`
 * shows help; a word with ':', '/', '@' or '.' (or any word after `--`) is an image reference;
 * a bare word within a typo's distance of a command or reserved word is refused with a
 * suggestion (lib/text's rule); any other word is an image reference too.
 */
function routeOf(args: readonly string[]): Route {
  const { words, afterDashes, maybeValues } = commandWords(args);
  const first = words[0];
  if (first === undefined) {
    if (args.some((a) => HELP_FLAGS.has(a))) return { kind: 'all' };
    return maybeValues ? { kind: 'pull' } : { kind: 'bare' };
  }
  if (afterDashes) return { kind: 'pull' };
  if (Object.hasOwn(COMMANDS, first)) return { kind: 'command', name: first };
  if (first === 'help') return { kind: 'help', words: words.slice(1) };
  if (first === 'version') return { kind: 'version' };
  if (/[:/@.]/.test(first)) return { kind: 'pull' };
  const near = suggest(first, [...Object.keys(COMMANDS), ...RESERVED_WORDS]);
  if (near !== undefined) {
    throw new UserError(`unknown command '${first}' (did you mean '${near}'? to pull an image of that name: fetch-image pull ${first})`, EXIT.usage);
  }
  return { kind: 'pull' };
}

async function commandsFor(route: Route, args: readonly string[]): Promise<Register[]> {
  if (route.kind === 'command') return [await COMMANDS[route.name]!(args)];
  if (route.kind === 'pull') return [await defaultCommand()];
  const words = route.kind === 'help' ? route.words : [];
  if (words[0] !== undefined && Object.hasOwn(COMMANDS, words[0])) return [await COMMANDS[words[0]]!(words)];
  return Promise.all([...Object.values(COMMANDS), defaultCommand].map((load) => load(args)));
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

const COMMAND_RULE = "A first word that is not a command is an image to pull; a typo of a command (within one or two letters) is refused with a suggestion: use 'fetch-image pull NAME' for an image so named.";

/**
 * A middleware (run after yargs' own validation) checking the option values against the table of
 * the command that matched, which yargs passes as the second argument; neither that argument nor
 * getOptions() is in yargs' type declarations.
 */
function optionValueCheck(args: readonly string[]): MiddlewareFunction<GlobalArgs> {
  const check = (_argv: unknown, y: { getOptions(): OptionTable }): void => checkOptionValues(args, y.getOptions());
  return check as unknown as MiddlewareFunction<GlobalArgs>;
}

/** The full command-line interface. */
export async function runApp(): Promise<void> {
  const raw = hideBin(process.argv);
  const route = routeOf(raw);
  if (route.kind === 'version') {
    process.stdout.write(`${packageVersion()}\n`);
    return;
  }
  const args = route.kind === 'help' ? [...route.words, '--help'] : normaliseArgs(raw);
  const registers = await commandsFor(route, args);
  const base: Argv<GlobalArgs> = yargs(args)
    .scriptName('fetch-image')
    .usage('$0 <command> [options]\n\nFixed-output fetcher and Nix-compatible store for container images and downloads.')
    .option('store', { type: 'string', global: true, describe: 'physical store root (env FETCH_IMAGE_STORE; default $XDG_DATA_HOME/fetch-image)' })
    .option('json', { type: 'boolean', global: true, describe: 'machine-readable output on stdout' })
    .option('quiet', { alias: 'q', type: 'boolean', global: true, describe: 'no progress or notes on stderr' })
    .middleware(optionValueCheck(args));
  skipHelpCache(base);
  const parser = registers.reduce((y, register) => register(y), base)
    .strict()
    .recommendCommands()
    .epilogue(`Exit codes: 0 ok, 1 failure, 2 usage error, 3 store verify found problems, 102 hash mismatch.\n${COMMAND_RULE}`)
    .fail((msg, err) => {
      if (err) throw err;
      throw new UserError(`${msg} (see --help)`, EXIT.usage);
    })
    .help()
    .alias('help', 'h')
    .version(packageVersion())
    .wrap(Math.min(110, process.stdout.columns || 100));
  if (route.kind === 'bare') {
    // Usage on stderr and exit 2, not 0: `fetch-image $REF --sha256 $PIN` with both unset must fail.
    parser.showHelp((text) => process.stderr.write(`${text}\n\n`));
    throw new UserError('no command or image given (fetch-image REF pulls an image; fetch-image help lists the commands)', EXIT.usage);
  }
  await parser.parseAsync();
}
