/**
 * netrc files, as curl (--netrc-file) and Nix (the netrc-file setting) read them: `machine HOST`
 * (or `default`) followed by `login`, `password` and `account`; `macdef` bodies (up to an empty
 * line) and `#` comments are skipped; values may be "quoted" with \-escapes. An entry answers
 * only for its own host; `default` for any host no machine entry names.
 *
 * Errors name the file and line, never a token: a misplaced token may be a password.
 */
import { readFileSync } from 'node:fs';

export interface NetrcEntry {
  /** Lower-case host name; null for `default`. */
  machine: string | null;
  login: string;
  password: string;
}

interface Token {
  text: string;
  line: number;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r' || c === ',') {
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '"') {
      let word = '';
      const start = line;
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        if (text[i] === '\n') line++;
        word += text[i];
        i++;
      }
      i++;
      tokens.push({ text: word, line: start });
    } else {
      let word = '';
      while (i < text.length && !' \t\r\n'.includes(text[i]!)) word += text[i++];
      tokens.push({ text: word, line });
      if (word === 'macdef') {
        // Its name is the rest of the line; the macro's body runs to the first empty line.
        const eol = text.indexOf('\n', i) < 0 ? text.length : text.indexOf('\n', i);
        tokens.push({ text: text.slice(i, eol).trim(), line });
        const end = text.indexOf('\n\n', eol) < 0 ? text.length : text.indexOf('\n\n', eol);
        for (const ch of text.slice(eol, end)) if (ch === '\n') line++;
        i = end;
      }
    }
  }
  return tokens;
}

/** Parses netrc text; `where` names the file in errors. */
export function parseNetrc(text: string, where: string): NetrcEntry[] {
  const entries: NetrcEntry[] = [];
  const tokens = tokenize(text);
  let current: NetrcEntry | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const value = (): string => {
      const v = tokens[i + 1];
      if (!v) throw new Error(`netrc file ${where}: line ${t.line}: '${t.text}' needs a value`);
      i++;
      return v.text;
    };
    switch (t.text) {
      case 'machine':
        current = { machine: value().toLowerCase(), login: '', password: '' };
        entries.push(current);
        break;
      case 'default':
        current = { machine: null, login: '', password: '' };
        entries.push(current);
        break;
      case 'login':
      case 'password':
      case 'account': {
        const v = value();
        if (!current) throw new Error(`netrc file ${where}: line ${t.line}: '${t.text}' before any 'machine' or 'default'`);
        if (t.text === 'login') current.login = v;
        else if (t.text === 'password') current.password = v;
        break;
      }
      case 'macdef':
        value();
        break;
      default:
        throw new Error(`netrc file ${where}: line ${t.line}: expected machine, default, login, password, account or macdef`);
    }
  }
  return entries;
}

/** Reads and parses a netrc file; a file that cannot be read is an error naming it. */
export function readNetrc(path: string): NetrcEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read netrc file '${path}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseNetrc(text, path);
}

/** The entry for `host`: its own machine entry, else `default`, else none. Entries without a login or password give none. */
export function netrcLookup(entries: readonly NetrcEntry[], host: string): NetrcEntry | undefined {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  const found = entries.find((e) => e.machine === h) ?? entries.find((e) => e.machine === null);
  return found && (found.login !== '' || found.password !== '') ? found : undefined;
}
