/**
 * The subset of curl's command line that NIX_CURL_FLAGS and `curlOpts` may carry. Anything else
 * is refused by name: silently ignoring a flag the user relies on (say `--proxy-insecure`)
 * would make a download behave differently from the curl it replaces.
 */

export interface CurlFlag {
  /** Short form, e.g. `-k`. */
  short?: string;
  /** Long form, e.g. `--insecure`; extra long spellings are in `aliases`. */
  long: string;
  aliases?: readonly string[];
  /** Name of the argument, when the flag takes one. */
  arg?: string;
  /** What it does here (for the README). */
  effect: string;
}

type FlagId = 'insecure' | 'retry' | 'max-time' | 'connect-timeout' | 'header' | 'user' | 'cacert' | 'proxy' | 'noproxy' | 'location' | 'continue-at';

interface FlagDef extends CurlFlag {
  id: FlagId;
}

const FLAGS: readonly FlagDef[] = [
  { id: 'insecure', short: '-k', long: '--insecure', effect: 'do not verify TLS certificates' },
  { id: 'retry', long: '--retry', arg: 'N', effect: 'retry transient failures (connection errors, timeouts, 408, 429, 5xx) up to N times' },
  { id: 'max-time', short: '-m', long: '--max-time', arg: 'SECONDS', effect: 'give up when the whole transfer, retries included, takes longer' },
  { id: 'connect-timeout', long: '--connect-timeout', arg: 'SECONDS', effect: 'give up on a connection attempt after SECONDS' },
  { id: 'header', short: '-H', long: '--header', arg: "'NAME: VALUE'", effect: 'add a request header (Authorization and Cookie go to the original origin only)' },
  { id: 'user', short: '-u', long: '--user', arg: 'USER:PASSWORD', effect: 'HTTP basic authentication, sent to the original origin only' },
  { id: 'cacert', long: '--cacert', arg: 'FILE', effect: 'trust the CA certificates in FILE (PEM) instead of the system ones' },
  { id: 'proxy', short: '-x', long: '--proxy', arg: 'URL', effect: 'use this proxy for every scheme (http, https, socks4, socks4a, socks5, socks5h); "" disables proxies' },
  { id: 'noproxy', long: '--noproxy', arg: 'LIST', effect: 'hosts that bypass the proxy, like no_proxy (overrides it)' },
  { id: 'location', short: '-L', long: '--location', effect: 'follow redirects (always done; accepted for compatibility)' },
  { id: 'continue-at', short: '-C', long: '--continue-at', arg: '-', effect: 'resume broken transfers (always done; only "-" is accepted)' },
];

/** The supported flags, as data (the README documents them from this). */
export const CURL_FLAGS_TABLE: readonly CurlFlag[] = FLAGS.map(({ id: _id, ...flag }) => flag);

/** What a set of curl flags asks for. Later flags override earlier ones; headers accumulate. */
export interface CurlSettings {
  insecure?: boolean;
  retries?: number;
  maxTimeMs?: number;
  connectTimeoutMs?: number;
  headers: Array<[string, string]>;
  /** `user:password` for basic authentication. */
  user?: string;
  caFile?: string;
  /** A proxy URL; the empty string means "no proxy", overriding the environment. */
  proxy?: string;
  /** A no_proxy-style list overriding the environment's. */
  noProxy?: string;
  location?: boolean;
  continueAt?: boolean;
}

/**
 * Splits `text` into words like a POSIX shell does for quoting only: whitespace separates,
 * '...' is literal, "..." honours \\ \" \$ \` escapes, a backslash outside quotes escapes the
 * next character. No expansion of any kind happens.
 */
export function splitShellWords(text: string, source = 'curl flags'): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated single quote in ${source}`);
      word += text.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new Error(`unterminated double quote in ${source}`);
        const d = text[i]!;
        if (d === '"') break;
        if (d === '\\' && i + 1 < text.length && '\\"$`\n'.includes(text[i + 1]!)) {
          if (text[i + 1] !== '\n') word += text[i + 1];
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
      inWord = true;
      i++;
    } else if (c === '\\') {
      if (i + 1 < text.length) {
        if (text[i + 1] !== '\n') {
          word += text[i + 1];
          inWord = true;
        }
        i += 2;
      } else {
        i++;
      }
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}

function seconds(value: string, flag: string, source: string): number {
  if (!/^\d+(\.\d+)?$/.test(value)) {
    throw new Error(`invalid value '${value}' for curl option '${flag}' in ${source}: expected seconds`);
  }
  return Math.round(Number(value) * 1000);
}

function apply(settings: CurlSettings, def: FlagDef, flag: string, value: string, source: string): void {
  switch (def.id) {
    case 'insecure': settings.insecure = true; break;
    case 'location': settings.location = true; break;
    case 'retry':
      if (!/^\d+$/.test(value)) throw new Error(`invalid value '${value}' for curl option '${flag}' in ${source}: expected a whole number`);
      settings.retries = Number(value);
      break;
    case 'max-time': settings.maxTimeMs = seconds(value, flag, source); break;
    case 'connect-timeout': settings.connectTimeoutMs = seconds(value, flag, source); break;
    case 'header': {
      const colon = value.indexOf(':');
      const name = colon < 0 ? '' : value.slice(0, colon).trim();
      const headerValue = colon < 0 ? '' : value.slice(colon + 1).trim();
      // The value is not echoed: it may be a credential.
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || headerValue === '') {
        throw new Error(`invalid header for curl option '${flag}' in ${source}: expected 'NAME: VALUE'`);
      }
      settings.headers.push([name, headerValue]);
      break;
    }
    case 'user':
      if (!value.includes(':')) throw new Error(`curl option '${flag}' in ${source} needs USER:PASSWORD (no password prompt here)`);
      settings.user = value;
      break;
    case 'cacert': settings.caFile = value; break;
    case 'proxy': settings.proxy = value; break;
    case 'noproxy': settings.noProxy = value; break;
    case 'continue-at':
      if (value !== '-') throw new Error(`unsupported curl option '${flag} ${value}' in ${source}: only '${flag} -' (automatic resume) is supported`);
      settings.continueAt = true;
      break;
  }
}

/**
 * Parses curl flags from `text` (word-split first) and returns what they ask for. Throws a
 * one-line error naming the first flag it cannot honour, e.g.
 * `unsupported curl option '--foo' in NIX_CURL_FLAGS`.
 */
export function parseCurlFlags(text: string, source = 'curl flags'): CurlSettings {
  return parseCurlWords(splitShellWords(text, source), source);
}

export function parseCurlWords(words: readonly string[], source = 'curl flags'): CurlSettings {
  const settings: CurlSettings = { headers: [] };
  const byLong = new Map<string, FlagDef>();
  const byShort = new Map<string, FlagDef>();
  for (const def of FLAGS) {
    byLong.set(def.long, def);
    for (const alias of def.aliases ?? []) byLong.set(alias, def);
    if (def.short) byShort.set(def.short[1]!, def);
  }
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word.startsWith('--')) {
      const def = byLong.get(word);
      if (!def) throw new Error(`unsupported curl option '${word}' in ${source}`);
      let value = '';
      if (def.arg) {
        if (i + 1 >= words.length) throw new Error(`curl option '${word}' in ${source} needs an argument`);
        value = words[++i]!;
      }
      apply(settings, def, word, value, source);
    } else if (word.startsWith('-') && word.length > 1) {
      // getopt style: booleans may be grouped (-kL); a flag with an argument takes the rest of
      // the word (-HX:y) or the next word.
      for (let j = 1; j < word.length; j++) {
        const letter = word[j]!;
        const def = byShort.get(letter);
        if (!def) throw new Error(`unsupported curl option '-${letter}' in ${source}`);
        if (!def.arg) {
          apply(settings, def, `-${letter}`, '', source);
          continue;
        }
        let value = word.slice(j + 1);
        if (value === '') {
          if (i + 1 >= words.length) throw new Error(`curl option '-${letter}' in ${source} needs an argument`);
          value = words[++i]!;
        }
        apply(settings, def, `-${letter}`, value, source);
        break;
      }
    } else {
      const shown = word.replace(/\/\/[^/@\s]*@/, '//***@');
      throw new Error(`unexpected argument '${shown}' in ${source}: only options are allowed`);
    }
  }
  return settings;
}

/** Combines settings in order: later scalars win, headers accumulate. */
export function mergeCurlSettings(...all: readonly CurlSettings[]): CurlSettings {
  let out: CurlSettings = { headers: [] };
  for (const s of all) {
    const defined = Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as Partial<CurlSettings>;
    out = { ...out, ...defined, headers: [...out.headers, ...s.headers] };
  }
  return out;
}
