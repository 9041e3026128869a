import { printable } from '../text/index.js';
/**
 * Reads the pins people already have: nixpkgs `pullImage { … }` attribute sets in `.nix`
 * files, without Nix. Only literal values are taken (strings, and booleans for `tlsVerify`):
 * anything computed — an interpolation, a variable, a function call, `inherit` — is reported as
 * unsupported with its line, never guessed.
 */

/** The attributes of pullImage an audit understands. */
export const PULL_IMAGE_ATTRS = ['imageName', 'imageDigest', 'sha256', 'hash', 'finalImageName', 'finalImageTag', 'os', 'arch', 'variant', 'tlsVerify', 'name'] as const;
export type PullImageAttr = (typeof PULL_IMAGE_ATTRS)[number];

export interface NixPin {
  file: string;
  /** Line of the `pullImage` word (1-based). */
  line: number;
  attrs: Partial<Record<PullImageAttr, string | boolean>>;
  /** Attributes whose value is not a literal, or not one pullImage takes. */
  unsupported: { attr: string; line: number; reason: string }[];
}

export class NixSyntaxError extends Error {
  constructor(file: string, line: number, what: string) {
    super(`${file}:${line}: ${what}`);
    this.name = 'NixSyntaxError';
  }
}

/** A cursor over Nix source that skips whitespace and comments and knows its line. */
class Scanner {
  pos = 0;
  constructor(readonly src: string, readonly file: string) {}

  line(at = this.pos): number {
    let n = 1;
    for (let i = 0; i < at && i < this.src.length; i++) if (this.src.charCodeAt(i) === 10) n++;
    return n;
  }

  fail(what: string, at = this.pos): never {
    throw new NixSyntaxError(this.file, this.line(at), what);
  }

  skipSpace(): void {
    const s = this.src;
    for (;;) {
      while (this.pos < s.length && /\s/.test(s[this.pos]!)) this.pos++;
      if (s[this.pos] === '#') {
        while (this.pos < s.length && s[this.pos] !== '\n') this.pos++;
      } else if (s.startsWith('/*', this.pos)) {
        const end = s.indexOf('*/', this.pos + 2);
        if (end < 0) this.fail('unterminated /* comment');
        this.pos = end + 2;
      } else return;
    }
  }

  peek(): string | undefined {
    return this.src[this.pos];
  }

  /** An identifier or attribute path word (`pkgs.dockerTools.pullImage` is read word by word). */
  word(): string | undefined {
    const m = /^[A-Za-z_][A-Za-z0-9_'-]*/.exec(this.src.slice(this.pos, this.pos + 256));
    if (!m) return undefined;
    this.pos += m[0].length;
    return m[0];
  }

  /**
   * A string literal at the cursor: `"…"` or `''…''`. Returns the text, or `undefined` (and the
   * cursor after the string) when it interpolates `${…}`.
   */
  stringLiteral(): { text: string } | { interpolated: true } {
    const s = this.src;
    const start = this.pos;
    if (s[this.pos] === '"') {
      this.pos++;
      let out = '';
      let interpolated = false;
      for (;;) {
        const c = s[this.pos];
        if (c === undefined) this.fail('unterminated string', start);
        if (c === '"') { this.pos++; break; }
        if (c === '\\') {
          const e = s[this.pos + 1];
          if (e === undefined) this.fail('unterminated string', start);
          out += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
          this.pos += 2;
          continue;
        }
        if (c === '$' && s[this.pos + 1] === '{') {
          interpolated = true;
          this.pos += 2;
          this.skipBalanced('}');
          continue;
        }
        out += c;
        this.pos++;
      }
      return interpolated ? { interpolated: true } : { text: out };
    }
    // Indented string: '' escapes are ''' (→ ''), ''$ (→ $), ''\x (→ x escaped).
    this.pos += 2;
    let raw = '';
    let interpolated = false;
    for (;;) {
      if (this.pos >= s.length) this.fail('unterminated indented string', start);
      if (s.startsWith("'''", this.pos)) { raw += "''"; this.pos += 3; continue; }
      if (s.startsWith("''$", this.pos)) { raw += '$'; this.pos += 3; continue; }
      if (s.startsWith("''\\", this.pos)) {
        const e = s[this.pos + 3] ?? '';
        raw += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
        this.pos += 4;
        continue;
      }
      if (s.startsWith("''", this.pos)) { this.pos += 2; break; }
      if (s.startsWith('${', this.pos)) { interpolated = true; this.pos += 2; this.skipBalanced('}'); continue; }
      raw += s[this.pos++];
    }
    return interpolated ? { interpolated: true } : { text: stripIndentation(raw) };
  }

  /** Skips to just after the `close` that balances an already consumed opener, minding strings and comments. */
  skipBalanced(close: '}' | ')' | ']'): void {
    const stack: string[] = [close];
    while (stack.length > 0) {
      this.skipSpace();
      const c = this.peek();
      if (c === undefined) this.fail(`missing '${printable(stack[stack.length - 1])}'`);
      if (c === '"' || (c === "'" && this.src[this.pos + 1] === "'")) { this.stringLiteral(); continue; }
      this.pos++;
      if (c === '{') stack.push('}');
      else if (c === '(') stack.push(')');
      else if (c === '[') stack.push(']');
      else if (c === '}' || c === ')' || c === ']') {
        if (c !== stack.pop()) this.fail(`unbalanced '${printable(c)}'`, this.pos - 1);
      }
    }
  }

  /** Skips one attribute value up to (not past) its terminating `;` at depth 0. */
  skipValue(): void {
    for (;;) {
      this.skipSpace();
      const c = this.peek();
      if (c === undefined) this.fail("missing ';'");
      if (c === ';') return;
      if (c === '"' || (c === "'" && this.src[this.pos + 1] === "'")) { this.stringLiteral(); continue; }
      this.pos++;
      if (c === '{') this.skipBalanced('}');
      else if (c === '(') this.skipBalanced(')');
      else if (c === '[') this.skipBalanced(']');
      else if (c === '}' || c === ')' || c === ']') this.fail(`unexpected '${printable(c)}'`, this.pos - 1);
    }
  }
}

/**
 * Nix's indented-string rule: a first line of only spaces is dropped, the smallest indentation
 * of the lines that are not only spaces is cut from every line, and a last line of only spaces
 * becomes empty.
 */
function stripIndentation(raw: string): string {
  const lines = raw.split('\n');
  const blank = (l: string): boolean => /^ *$/.test(l);
  if (lines.length > 1 && blank(lines[0]!)) lines.shift();
  const indent = (l: string): number => /^ */.exec(l)![0].length;
  const cut = Math.min(...lines.filter((l) => !blank(l)).map(indent));
  const out = lines.map((l) => l.slice(Math.min(cut, indent(l))));
  if (blank(lines[lines.length - 1]!)) out[out.length - 1] = '';
  return out.join('\n');
}

const KNOWN = new Set<string>(PULL_IMAGE_ATTRS);

/** Parses the attribute set whose `{` is at the cursor. */
function readPullImageSet(sc: Scanner, pin: NixPin): void {
  sc.pos++; // '{'
  for (;;) {
    sc.skipSpace();
    const at = sc.pos;
    const c = sc.peek();
    if (c === undefined) sc.fail("missing '}' of pullImage { … }", at);
    if (c === '}') { sc.pos++; return; }
    const key = c === '"' ? sc.stringLiteral() : undefined;
    const name = key ? ('text' in key ? key.text : undefined) : sc.word();
    if (name === 'inherit') {
      const start = sc.pos;
      sc.skipValue();
      const names = sc.src.slice(start, sc.pos).replace(/\([^)]*\)/, '').trim().split(/\s+/).filter(Boolean);
      for (const n of names) pin.unsupported.push({ attr: n, line: sc.line(at), reason: 'inherit (not a literal)' });
      sc.pos++;
      continue;
    }
    if (name === undefined) sc.fail('expected an attribute name in pullImage { … }', at);
    sc.skipSpace();
    if (sc.peek() === '.') {
      // a.b = …; is a nested attribute: not something pullImage takes.
      sc.skipValue();
      pin.unsupported.push({ attr: name, line: sc.line(at), reason: 'nested attribute path' });
      sc.pos++;
      continue;
    }
    if (sc.peek() !== '=') sc.fail(`expected '=' after '${printable(name)}'`);
    sc.pos++;
    sc.skipSpace();
    const valueAt = sc.pos;
    const v = sc.peek();
    let value: string | boolean | undefined;
    let reason = 'computed value (only literals are read)';
    if (v === '"' || (v === "'" && sc.src[sc.pos + 1] === "'")) {
      const lit = sc.stringLiteral();
      if ('text' in lit) value = lit.text;
      else reason = 'string with ${…} interpolation (only literals are read)';
    } else {
      const w = sc.word();
      if (w === 'true' || w === 'false') value = w === 'true';
      else sc.pos = valueAt;
    }
    sc.skipSpace();
    if (value !== undefined && sc.peek() !== ';') { value = undefined; reason = 'computed value (only literals are read)'; }
    sc.skipValue();
    sc.pos++; // ';'
    if (!KNOWN.has(name)) {
      pin.unsupported.push({ attr: name, line: sc.line(at), reason: 'not an attribute of pullImage that an audit reads' });
    } else if (value === undefined) {
      pin.unsupported.push({ attr: name, line: sc.line(valueAt), reason });
    } else if ((name === 'tlsVerify') !== (typeof value === 'boolean')) {
      pin.unsupported.push({ attr: name, line: sc.line(valueAt), reason: name === 'tlsVerify' ? 'expected true or false' : 'expected a string' });
    } else {
      pin.attrs[name as PullImageAttr] = value;
    }
  }
}

/** Every `pullImage { … }` call in `source` (any attribute path ending in `pullImage`). */
export function readNixPins(source: string, file: string): NixPin[] {
  const sc = new Scanner(source, file);
  const pins: NixPin[] = [];
  while (sc.pos < source.length) {
    sc.skipSpace();
    const c = sc.peek();
    if (c === undefined) break;
    if (c === '"' || (c === "'" && source[sc.pos + 1] === "'")) { sc.stringLiteral(); continue; }
    const at = sc.pos;
    const w = sc.word();
    if (w === undefined) { sc.pos++; continue; }
    if (w !== 'pullImage') continue;
    sc.skipSpace();
    if (sc.peek() === 'r' && source.startsWith('rec', sc.pos)) { sc.word(); sc.skipSpace(); }
    if (sc.peek() !== '{') continue; // e.g. `inherit (dockerTools) pullImage;`
    const pin: NixPin = { file, line: sc.line(at), attrs: {}, unsupported: [] };
    readPullImageSet(sc, pin);
    pins.push(pin);
  }
  return pins;
}

/** What `nix-prefetch-docker --json` prints (one object), or an array of them. */
export interface PrefetchDockerJson {
  imageName: string;
  imageDigest: string;
  sha256?: string;
  hash?: string;
  finalImageName?: string;
  finalImageTag?: string;
  os?: string;
  arch?: string;
}

/** Reads `nix-prefetch-docker --json` output (one object or an array), naming the file on errors. */
export function readPrefetchDockerJson(text: string, file: string): PrefetchDockerJson[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not JSON (${printable((e as Error).message)})`);
  }
  const items = Array.isArray(parsed) ? parsed : [parsed];
  return items.map((item, i) => {
    const where = Array.isArray(parsed) ? `${file}: [${i}]` : file;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new Error(`${where}: expected an object`);
    const o = item as Record<string, unknown>;
    const str = (k: string, required: boolean): string | undefined => {
      const v = o[k];
      if (v === undefined && !required) return undefined;
      if (typeof v !== 'string' || v === '') throw new Error(`${where}: ${k}: expected a non-empty string`);
      return v;
    };
    const pin: PrefetchDockerJson = { imageName: str('imageName', true)!, imageDigest: str('imageDigest', true)! };
    for (const k of ['sha256', 'hash', 'finalImageName', 'finalImageTag', 'os', 'arch'] as const) {
      const v = str(k, false);
      if (v !== undefined) pin[k] = v;
    }
    if (pin.sha256 === undefined && pin.hash === undefined) throw new Error(`${where}: neither sha256 nor hash is given`);
    return pin;
  });
}
