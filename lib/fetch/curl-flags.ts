import { printable } from '../text/index.js';
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

type FlagId = 'insecure' | 'retry' | 'max-time' | 'connect-timeout' | 'header' | 'user' | 'cacert' | 'proxy' | 'proxy-user' | 'noproxy' | 'location' | 'continue-at';

interface FlagDef extends CurlFlag {
  id: FlagId;
}

const FLAGS: readonly FlagDef[] = [
  { id: 'insecure', short: '-k', long: '--insecure', effect: 'do not verify TLS certificates' },
  { id: 'retry', long: '--retry', arg: 'N', effect: 'retry transient failures (connection errors, timeouts, 408, 429, 5xx) up to N times' },
  { id: 'max-time', short: '-m', long: '--max-time', arg: 'SECONDS', effect: 'give up when the whole transfer, retries included, takes longer' },
  { id: 'connect-timeout', long: '--connect-timeout', arg: 'SECONDS', effect: 'give up on a connection attempt after SECONDS' },
  { id: 'header', short: '-H', long: '--header', arg: "'NAME: VALUE'", effect: 'add a request header (Authorization and Cookie go to the origin fetched only, Proxy-Authorization to the proxy only; none of them is stored)' },
  { id: 'user', short: '-u', long: '--user', arg: 'USER:PASSWORD', effect: 'HTTP basic authentication, sent to the origin fetched only (for pulls: the registry\'s credentials); never stored' },
  { id: 'cacert', long: '--cacert', arg: 'FILE', effect: 'trust the CA certificates in FILE (PEM) instead of the system ones' },
  { id: 'proxy', short: '-x', long: '--proxy', arg: 'URL', effect: 'use this proxy for every scheme (http, https, socks4, socks4a, socks5, socks5h); "" disables proxies; a USER:PASSWORD@ in it is not stored' },
  { id: 'proxy-user', short: '-U', long: '--proxy-user', arg: 'USER:PASSWORD', effect: 'credentials for the proxy (http: Proxy-Authorization, socks5: username/password), sent to the proxy only; never stored' },
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
  /** `user[:password]` for whichever proxy is used. */
  proxyUser?: string;
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
    throw new Error(`invalid value '${printable(value)}' for curl option '${printable(flag)}' in ${source}: expected seconds`);
  }
  return Math.round(Number(value) * 1000);
}

function apply(settings: CurlSettings, def: FlagDef, flag: string, value: string, source: string): void {
  switch (def.id) {
    case 'insecure': settings.insecure = true; break;
    case 'location': settings.location = true; break;
    case 'retry':
      if (!/^\d+$/.test(value)) throw new Error(`invalid value '${printable(value)}' for curl option '${printable(flag)}' in ${source}: expected a whole number`);
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
        throw new Error(`invalid header for curl option '${printable(flag)}' in ${source}: expected 'NAME: VALUE'`);
      }
      settings.headers.push([name, headerValue]);
      break;
    }
    case 'user':
      if (!value.includes(':')) throw new Error(`curl option '${printable(flag)}' in ${source} needs USER:PASSWORD (no password prompt here)`);
      settings.user = value;
      break;
    case 'cacert': settings.caFile = value; break;
    case 'proxy': settings.proxy = value; break;
    case 'proxy-user': settings.proxyUser = value; break;
    case 'noproxy': settings.noProxy = value; break;
    case 'continue-at':
      if (value !== '-') throw new Error(`unsupported curl option '${printable(`${flag} ${value}`)}' in ${source}: only '${flag} -' (automatic resume) is supported`);
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

/** One flag as given: its definition, its spelling (`-u`, `--user`) and its argument ('' if none). */
interface GivenFlag {
  def: FlagDef;
  flag: string;
  value: string;
}

const BY_LONG = new Map<string, FlagDef>();
const BY_SHORT = new Map<string, FlagDef>();
for (const def of FLAGS) {
  BY_LONG.set(def.long, def);
  for (const alias of def.aliases ?? []) BY_LONG.set(alias, def);
  if (def.short) BY_SHORT.set(def.short[1]!, def);
}

/** Header names that carry credentials (compared in lower case). */
export const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set(['authorization', 'cookie', 'proxy-authorization']);

function headerName(g: GivenFlag): string {
  return g.def.id === 'header' ? g.value.slice(0, Math.max(0, g.value.indexOf(':'))).trim().toLowerCase() : '';
}

/** `-u`, `-U`, a credential header, or a proxy URL (which may hold a password). */
function carriesCredentials(g: GivenFlag): boolean {
  return g.def.id === 'user' || g.def.id === 'proxy-user' || g.def.id === 'proxy' || CREDENTIAL_HEADERS.has(headerName(g));
}

/** Splits words into flags and their arguments, refusing anything not in the table. */
function scanCurlWords(words: readonly string[], source: string): GivenFlag[] {
  const out: GivenFlag[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word.startsWith('--')) {
      const def = BY_LONG.get(word);
      // Only the name is shown: `--user=alice:pw` must not print the password.
      if (!def) throw new Error(`unsupported curl option '${printable(word.includes('=') ? `${word.slice(0, word.indexOf('='))}=…` : word)}' in ${source}`);
      let value = '';
      if (def.arg) {
        if (i + 1 >= words.length) throw new Error(`curl option '${printable(word)}' in ${source} needs an argument`);
        value = words[++i]!;
      }
      out.push({ def, flag: word, value });
    } else if (word.startsWith('-') && word.length > 1) {
      // getopt style: booleans may be grouped (-kL); a flag with an argument takes the rest of
      // the word (-HX:y) or the next word.
      for (let j = 1; j < word.length; j++) {
        const letter = word[j]!;
        const def = BY_SHORT.get(letter);
        if (!def) throw new Error(`unsupported curl option '-${printable(letter)}' in ${source}`);
        if (!def.arg) {
          out.push({ def, flag: `-${letter}`, value: '' });
          continue;
        }
        let value = word.slice(j + 1);
        if (value === '') {
          if (i + 1 >= words.length) throw new Error(`curl option '-${letter}' in ${source} needs an argument`);
          value = words[++i]!;
        }
        out.push({ def, flag: `-${letter}`, value });
        break;
      }
    } else {
      // After a credential, a stray word is most likely the rest of it (an unquoted value).
      const last = out[out.length - 1];
      if (last && carriesCredentials(last)) {
        throw new Error(`unexpected argument after curl option '${printable(last.flag)}' in ${source}: only options are allowed (quote a value that has spaces)`);
      }
      const shown = word.replace(/\/\/[^/@\s]*@/, '//***@');
      throw new Error(`unexpected argument '${printable(shown)}' in ${source}: only options are allowed`);
    }
  }
  return out;
}

export function parseCurlWords(words: readonly string[], source = 'curl flags'): CurlSettings {
  const settings: CurlSettings = { headers: [] };
  for (const { def, flag, value } of scanCurlWords(words, source)) apply(settings, def, flag, value, source);
  return settings;
}


/** A word as a POSIX shell reads it back with splitShellWords (quoted only when it must be). */
export function quoteShellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

/** A proxy URL without its userinfo, and that userinfo decoded as `user[:password]`. */
function splitProxyUserinfo(value: string, source: string): { url: string; user: string | undefined } {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(value)?.[0] ?? '';
  const rest = value.slice(scheme.length);
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  const at = authority.lastIndexOf('@');
  if (at < 0) return { url: value, user: undefined };
  const info = authority.slice(0, at);
  const colon = info.indexOf(':');
  try {
    const user = colon < 0 ? decodeURIComponent(info) : `${decodeURIComponent(info.slice(0, colon))}:${decodeURIComponent(info.slice(colon + 1))}`;
    return { url: scheme + rest.slice(at + 1), user };
  } catch {
    throw new Error(`invalid proxy URL in ${source}: bad %-escape in its user name or password`);
  }
}

/** Curl flags split into what may be written into a recipe and what carries credentials. */
export interface SplitCurlOpts {
  /** The flags without credentials: the text as given when it had none. */
  stored: string;
  /** `-u`, `-U`, `-H` Authorization/Cookie/Proxy-Authorization and a proxy URL's userinfo (as `-U`); '' if none. */
  secret: string;
}

/**
 * Separates the credentials from curl flags, so that a recipe (a world-readable store path,
 * exported and served with its output) never holds them: they are handed to the builder at
 * build time instead. Applying `stored` then `secret` asks for what the text asked for. Throws
 * the same errors as parseCurlFlags.
 */
export function splitSecretCurlOpts(text: string, source = 'curl flags'): SplitCurlOpts {
  const given = scanCurlWords(splitShellWords(text, source), source);
  parseCurlWords(splitShellWords(text, source), source); // the values are checked here, as at build time
  const lastProxy = given.map((g) => g.def.id).lastIndexOf('proxy');
  const stored: string[] = [];
  const secret: string[] = [];
  const render = (g: GivenFlag, value = g.value): string[] => (g.def.arg ? [g.flag, quoteShellWord(value)] : [g.flag]);
  given.forEach((g, i) => {
    const id = g.def.id;
    if (id === 'user' || id === 'proxy-user' || CREDENTIAL_HEADERS.has(headerName(g))) {
      secret.push(...render(g));
    } else if (id === 'proxy') {
      const { url, user } = splitProxyUserinfo(g.value, source);
      stored.push(...render(g, url));
      // Only the proxy that stays in effect (the last -x) gets the credentials.
      if (user !== undefined && i === lastProxy) secret.push('--proxy-user', quoteShellWord(user));
    } else {
      stored.push(...render(g));
    }
  });
  if (secret.length === 0 && given.every((g) => g.def.id !== 'proxy' || splitProxyUserinfo(g.value, source).user === undefined)) {
    return { stored: text, secret: '' };
  }
  return { stored: stored.join(' '), secret: secret.join(' ') };
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
