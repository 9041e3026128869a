/**
 * nixpkgs' detjson.py (pkgs/build-support/docker/detjson.py, the version with the
 * `if k not in j: continue` guard), reproduced byte for byte:
 *
 *     j = json.load(sys.stdin); makedet(j, SAFEDELS); json.dump(j, sys.stdout, sort_keys=True)
 *
 * Docker Hub's v1 registry sent the same layer metadata in different byte forms (key order,
 * whitespace, default-valued keys present or not: docker/hub-feedback#488); pull.nix hashed the
 * output of this script, so every byte of Python's json module matters here.
 *
 * Why not json-stable-stringify (used elsewhere for key order): it joins members with "," (Python
 * writes ", " and ": "), its `space` option adds newlines and indentation, it prints primitives
 * and keys with JSON.stringify (no \u escapes of four hex digits for non-ASCII, JS doubles instead of Python's int/float
 * forms, big ints rounded) and sorts keys by UTF-16 code units where Python sorts by code point.
 * None of that can be fixed through its `replacer`/`cmp` options (a replacer cannot emit raw
 * text), so this file has its own small parser and writer.
 */

/** A Python int: arbitrary precision, kept as its canonical decimal text. */
export class PyInt {
  constructor(readonly text: string) {}
}

/** A Python float (an IEEE double, as Python's float() parses it). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** What Python's json.loads returns, with dict → Map (so `__proto__` and order are plain data). */
export type PyJson = null | boolean | string | PyInt | PyFloat | PyJson[] | PyObject;
export type PyObject = Map<string, PyJson>;

/** Python's default recursion limit makes its C scanner give up around this depth. */
const MAX_DEPTH = 900;

class PyJsonParser {
  private i = 0;
  constructor(private readonly s: string, private readonly where: string) {}

  parse(): PyJson {
    this.ws();
    const v = this.value(0);
    this.ws();
    if (this.i !== this.s.length) this.fail('extra data after the JSON value');
    return v;
  }

  private fail(what: string): never {
    throw new Error(`${this.where}: invalid JSON: ${what} at char ${this.i}`);
  }

  private ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      this.i++;
    }
  }

  private word(w: string): boolean {
    if (!this.s.startsWith(w, this.i)) return false;
    this.i += w.length;
    return true;
  }

  private value(depth: number): PyJson {
    if (depth > MAX_DEPTH) this.fail('nesting too deep');
    const c = this.s[this.i];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.string();
    // Python's scanner accepts NaN and ±Infinity (allow_nan defaults to True on both sides).
    if (this.word('null')) return null;
    if (this.word('true')) return true;
    if (this.word('false')) return false;
    if (this.word('NaN')) return new PyFloat(NaN);
    if (this.word('Infinity')) return new PyFloat(Infinity);
    if (this.word('-Infinity')) return new PyFloat(-Infinity);
    return this.number();
  }

  private object(depth: number): PyObject {
    const out: PyObject = new Map();
    this.i++;
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      if (this.s[this.i] !== '"') this.fail('expected a property name in double quotes');
      const key = this.string();
      this.ws();
      if (this.s[this.i] !== ':') this.fail("expected ':'");
      this.i++;
      this.ws();
      // A repeated key: the last value wins, as in a Python dict.
      out.set(key, this.value(depth + 1));
      this.ws();
      const d = this.s[this.i++];
      if (d === '}') return out;
      if (d !== ',') this.fail("expected ',' or '}'");
      this.ws();
    }
  }

  private array(depth: number): PyJson[] {
    const out: PyJson[] = [];
    this.i++;
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.ws();
      const d = this.s[this.i++];
      if (d === ']') return out;
      if (d !== ',') this.fail("expected ',' or ']'");
      this.ws();
    }
  }

  // Python's strict scanner: no raw control characters, exactly four hex digits after \u.
  // Surrogate escapes are kept as UTF-16 code units, which is what Python's pairing yields.
  private string(): string {
    const s = this.s;
    this.i++;
    let out = '';
    let run = this.i;
    for (;;) {
      if (this.i >= s.length) this.fail('unterminated string');
      const c = s.charCodeAt(this.i);
      if (c === 0x22) {
        out += s.slice(run, this.i);
        this.i++;
        return out;
      }
      if (c < 0x20) this.fail('control character in string');
      if (c !== 0x5c) {
        this.i++;
        continue;
      }
      out += s.slice(run, this.i);
      const e = s[this.i + 1];
      this.i += 2;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const hex = s.slice(this.i, this.i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          this.i += 4;
          break;
        }
        default:
          this.i -= 2;
          this.fail('invalid escape');
      }
      run = this.i;
    }
  }

  // Python's NUMBER_RE: -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)? — a fraction or exponent makes a float.
  private number(): PyInt | PyFloat {
    const m = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;
    m.lastIndex = this.i;
    const r = m.exec(this.s);
    if (!r) this.fail('expected a value');
    this.i += r[0].length;
    if (r[1] === undefined && r[2] === undefined) {
      // int('-0') is 0; every other integer literal is already canonical.
      return new PyInt(r[0] === '-0' ? '0' : r[0]);
    }
    return new PyFloat(Number(r[0]));
  }
}

/** Python 3's json.loads on UTF-8 bytes (or on text), as a PyJson tree. */
export function parsePyJson(input: Uint8Array | string, where = 'JSON'): PyJson {
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    try {
      // json.loads(bytes) decodes as utf-8-sig: a leading BOM is dropped.
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(input);
    } catch {
      throw new Error(`${where}: invalid JSON: not valid UTF-8`);
    }
  }
  return new PyJsonParser(text, where).parse();
}

const HEX = '0123456789abcdef';

/** Python's json string encoder with ensure_ascii: only ' '..'~' stay literal. */
export function pyJsonString(s: string): string {
  let out = '"';
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(run, i);
    run = i + 1;
    switch (c) {
      case 0x22: out += '\\"'; break;
      case 0x5c: out += '\\\\'; break;
      case 0x0a: out += '\\n'; break;
      case 0x0d: out += '\\r'; break;
      case 0x09: out += '\\t'; break;
      case 0x08: out += '\\b'; break;
      case 0x0c: out += '\\f'; break;
      // Code units, so astral characters come out as their surrogate pair, as Python writes them.
      default: out += '\\u' + HEX[c >> 12]! + HEX[(c >> 8) & 15]! + HEX[(c >> 4) & 15]! + HEX[c & 15]!;
    }
  }
  return out + s.slice(run) + '"';
}

/**
 * Python's float repr: the shortest digits that round-trip (the same digits JS picks), fixed
 * notation when the decimal point falls within [-4, 16), otherwise d.ddde±XX; a trailing ".0"
 * on integral values in fixed notation.
 */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  if (x === 0) return sign + '0.0';
  const [mant, expText] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mant.replace('.', '');
  const exp = Number(expText);
  const decpt = exp + 1; // value = 0.DIGITS × 10^decpt
  if (decpt <= -4 || decpt > 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (decpt <= 0) return `${sign}0.${'0'.repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${'0'.repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

/** Orders strings by code point, as Python compares str (JS's default sort uses UTF-16 units). */
export function compareCodePoints(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(j)!;
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  return (a.length - i) - (b.length - j);
}

/** `json.dumps(value, sort_keys=True)` with Python's defaults (", " / ": ", ensure_ascii). */
export function dumpPyJson(value: PyJson): string {
  const parts: string[] = [];
  const emit = (v: PyJson): void => {
    if (v === null) parts.push('null');
    else if (v === true) parts.push('true');
    else if (v === false) parts.push('false');
    else if (typeof v === 'string') parts.push(pyJsonString(v));
    else if (v instanceof PyInt) parts.push(v.text);
    else if (v instanceof PyFloat) parts.push(pyFloatRepr(v.value));
    else if (Array.isArray(v)) {
      parts.push('[');
      v.forEach((e, n) => {
        if (n) parts.push(', ');
        emit(e);
      });
      parts.push(']');
    } else {
      parts.push('{');
      [...v.keys()].sort(compareCodePoints).forEach((k, n) => {
        if (n) parts.push(', ');
        parts.push(pyJsonString(k), ': ');
        emit(v.get(k)!);
      });
      parts.push('}');
    }
  };
  emit(value);
  return parts.join('');
}

type Default = 0 | false | '' | null;
type SafeDels = ReadonlyMap<string, Default | SafeDels>;

const CONFIG_DELS: SafeDels = new Map<string, Default>([
  ['ExposedPorts', null], ['MacAddress', ''], ['NetworkDisabled', false], ['PortSpecs', null], ['VolumeDriver', ''],
]);
const SAFEDELS: SafeDels = new Map<string, Default | SafeDels>([
  ['Size', 0], ['config', CONFIG_DELS], ['container_config', CONFIG_DELS],
]);

// Python's ==: 0 == 0.0 == -0.0 == False; '' only equals ''; None only None.
function pyEqualsDefault(v: PyJson, d: Default): boolean {
  if (d === null) return v === null;
  if (d === '') return v === '';
  if (v === false) return true;
  if (v instanceof PyInt) return v.text === '0';
  return v instanceof PyFloat && v.value === 0;
}

function typeName(v: PyJson): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'string') return 'string';
  if (v instanceof PyInt || v instanceof PyFloat) return 'number';
  return Array.isArray(v) ? 'array' : 'object';
}

/**
 * makedet(j, SAFEDELS) in place. Where Python raises (`k in j` on null/number/bool, or `j[k]`
 * on a list or string that "contains" k) this throws, so such input fails here as it did there.
 */
export function makeDeterministic(j: PyJson, where = 'layer json', dels: SafeDels = SAFEDELS, path = ''): void {
  for (const [k, d] of dels) {
    let present: boolean;
    if (j instanceof Map) present = j.has(k);
    else if (Array.isArray(j)) present = j.includes(k);
    else if (typeof j === 'string') present = j.includes(k);
    else throw new Error(`${where}: detjson cannot look up '${k}' in ${path || 'the top level'}: it is ${typeName(j)}`);
    if (!present) continue;
    if (!(j instanceof Map)) throw new Error(`${where}: detjson cannot index ${path || 'the top level'} (${typeName(j)}) with '${k}'`);
    const v = j.get(k)!;
    if (d !== null && typeof d === 'object') makeDeterministic(v, where, d, path ? `${path}.${k}` : k);
    else if (pyEqualsDefault(v, d)) j.delete(k);
  }
}

/** detjson.py as a function: raw layer json in, its deterministic text out (no trailing newline). */
export function detjson(input: Uint8Array | string, where = 'layer json'): string {
  const j = parsePyJson(input, where);
  makeDeterministic(j, where);
  return dumpPyJson(j);
}
