// How the command line is read before and around yargs, so that options parse the way people
// type them: getopt's rule for opaque values, `--` ending the options, and no option value that
// is empty, missing or not what its type says passing silently (an empty `--sha256 "$PIN"` must
// never turn a verification into a prefetch; `--tls-verify=` must never turn TLS off).
import { EXIT, UserError } from './errors.js';

/**
 * Options whose value is opaque text that may itself begin with '-' (curl flags, passwords):
 * as getopt does for an option that requires an argument, the next word is the value, whatever
 * it looks like (`--curl-opts -k`, `--curl-opts '--retry 0'`).
 */
const VERBATIM_VALUE_OPTIONS: ReadonlySet<string> = new Set(['curl-opts', 'creds', 'src-creds', 'dest-creds']);

/** Options for which an empty value means something: no extra curl flags. */
const EMPTY_ALLOWED: ReadonlySet<string> = new Set(['curl-opts']);

/** Options whose value is a hash pin: their message says so (`empty hash given to --sha256`). */
const HASH_OPTIONS: ReadonlySet<string> = new Set(['sha256', 'hash']);

const usage = (message: string): UserError => new UserError(message, EXIT.usage);

/**
 * The arguments as yargs should see them: `--opt WORD` becomes `--opt=WORD` for the verbatim
 * options above, and `--` is dropped after checking that no word after it looks like an option
 * (yargs does not fill positionals from words after `--`; without it they parse the same).
 */
export function normaliseArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      for (const rest of args.slice(i + 1)) {
        if (rest.startsWith('-') && rest !== '-') throw usage(`'${rest}' after '--' cannot be a positional argument here (for a file, write ./${rest})`);
        out.push(rest);
      }
      break;
    }
    const name = a.startsWith('--') && !a.includes('=') ? a.slice(2) : undefined;
    if (name !== undefined && VERBATIM_VALUE_OPTIONS.has(name) && i + 1 < args.length) {
      out.push(`--${name}=${args[++i]!}`);
      continue;
    }
    out.push(a);
  }
  return out;
}

/** What yargs knows about the options of the command being run (from `getOptions()`). */
export interface OptionTable {
  key: Record<string, unknown>;
  boolean: string[];
  number: string[];
  array: string[];
  alias: Record<string, string[]>;
}

const kebabCase = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** A word that may be an option's value: not another option (a lone '-' and negative numbers are values). */
function isValueWord(word: string | undefined): word is string {
  return word !== undefined && (!word.startsWith('-') || word === '-' || /^-\d/.test(word));
}

/**
 * Checks every `--option` on the (normalised) command line against its declared type, since
 * yargs quietly turns mistakes into working values: a value-taking option with an empty or
 * missing value (`--sha256 ""`, `--sha256` last, `--sha256 --json`), a non-repeatable option
 * given twice, a number that is not one (`--jobs abc` gives NaN), and a boolean with a value
 * other than true/false (`--tls-verify=` and `--tls-verify=no` both mean false to yargs).
 */
export function checkOptionValues(args: readonly string[], table: OptionTable): void {
  const canonical = new Map<string, string>();
  for (const key of Object.keys(table.key)) canonical.set(key, key);
  for (const [key, aliases] of Object.entries(table.alias)) for (const alias of aliases) canonical.set(alias, key);
  const booleans = new Set(table.boolean);
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    if (!word.startsWith('--')) continue;
    const eq = word.indexOf('=');
    // yargs also accepts the camel-case spelling of every option (--tlsVerify for --tls-verify).
    const name = kebabCase(eq < 0 ? word.slice(2) : word.slice(2, eq));
    let value = eq < 0 ? undefined : word.slice(eq + 1);
    const negated = name.startsWith('no-') && booleans.has(canonical.get(name.slice(3)) ?? '');
    const key = canonical.get(negated ? name.slice(3) : name);
    if (key === undefined) continue; // unknown options are yargs' (strict mode) to refuse
    if (booleans.has(key)) {
      if (value !== undefined && value !== 'true' && value !== 'false') {
        throw usage(`--${name} takes no value, or =true or =false; got '${word}'`);
      }
      continue;
    }
    if (value === undefined) value = isValueWord(args[i + 1]) ? args[++i]! : '';
    if (value === '' && !EMPTY_ALLOWED.has(key)) {
      throw usage(HASH_OPTIONS.has(key) ? `empty hash given to --${name}` : `empty value given to --${name}`);
    }
    if (table.number.includes(key) && (value.trim() === '' || !Number.isFinite(Number(value)))) {
      throw usage(`--${name} expects a number, got '${value}'`);
    }
    if (seen.has(key) && !table.array.includes(key)) throw usage(`--${name} given more than once (it takes one value)`);
    seen.add(key);
  }
}
