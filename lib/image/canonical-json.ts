import stableStringify from 'json-stable-stringify';

/**
 * JSON byte forms other programs produce, reproduced exactly:
 * - stableJson: our own canonical form (sorted keys, no whitespace).
 * - goMarshal / goCompactJson: Go 1.19 encoding/json as skopeo's docker-archive writer uses it
 *   (HTML-escaping, sorted map keys, json.RawMessage compacted).
 * (nixpkgs' detjson.py form lives in detjson.ts.)
 */

/** Sorted keys, no whitespace (json-stable-stringify). */
export function stableJson(value: unknown): string {
  const s = stableStringify(value);
  if (s === undefined) throw new Error('value has no JSON form');
  return s;
}

// ---------------------------------------------------------------- Go encoding/json

const HEX = '0123456789abcdef';

/** Go's encodeState.string with escapeHTML (Go 1.19: \b and \f are written as \u0008, \u000c). */
export function goJsonString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&') out += '\\u00' + HEX[c >> 4] + HEX[c & 15];
    else if (c === 0x2028 || c === 0x2029) out += '\\u202' + HEX[c & 15];
    else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd'; // a lone surrogate is invalid UTF-8 to Go
    else out += ch;
  }
  return out + '"';
}

/** JSON text that goMarshal copies through Go's compact(), like a json.RawMessage. */
export class GoRawJson {
  constructor(readonly bytes: Buffer) {}
}

/**
 * What Go's json.Marshal writes for a value built of: null, booleans, integers, strings, arrays,
 * plain objects (a Go struct: keys in insertion order), Map (a Go map: keys sorted bytewise),
 * and GoRawJson.
 */
export type GoJsonValue =
  | null | boolean | number | string | GoRawJson | GoJsonValue[]
  | { [key: string]: GoJsonValue } | Map<string, GoJsonValue>;

export function goMarshal(value: GoJsonValue): Buffer {
  const parts: Buffer[] = [];
  const emit = (v: GoJsonValue): void => {
    if (v === null) parts.push(Buffer.from('null'));
    else if (typeof v === 'boolean') parts.push(Buffer.from(String(v)));
    else if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new Error(`goMarshal: only integers are supported, got ${v}`);
      parts.push(Buffer.from(String(v)));
    } else if (typeof v === 'string') parts.push(Buffer.from(goJsonString(v)));
    else if (v instanceof GoRawJson) parts.push(goCompactJson(v.bytes));
    else if (Array.isArray(v)) {
      parts.push(Buffer.from('['));
      v.forEach((item, i) => {
        if (i) parts.push(Buffer.from(','));
        emit(item);
      });
      parts.push(Buffer.from(']'));
    } else {
      const entries = v instanceof Map
        ? [...v.entries()].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
        : Object.entries(v);
      parts.push(Buffer.from('{'));
      entries.forEach(([k, item], i) => {
        parts.push(Buffer.from((i ? ',' : '') + goJsonString(k) + ':'));
        emit(item);
      });
      parts.push(Buffer.from('}'));
    }
  };
  emit(value);
  return Buffer.concat(parts);
}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/**
 * Go's compact(dst, src, escapeHTML=true): drops insignificant whitespace and escapes
 * <, >, & and U+2028/U+2029, leaving every other byte (number forms, escapes) as written.
 * The input must be valid JSON.
 */
export function goCompactJson(src: Buffer): Buffer {
  const out: number[] = [];
  const push = (s: string) => { for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i)); };
  let inString = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === 0x3c || c === 0x3e || c === 0x26) { push('\\u00' + HEX[c >> 4] + HEX[c & 15]); continue; }
    if (c === 0xe2 && i + 2 < src.length && src[i + 1] === 0x80 && (src[i + 2]! & ~1) === 0xa8) {
      push('\\u202' + HEX[src[i + 2]! & 15]);
      i += 2;
      continue;
    }
    if (inString) {
      out.push(c);
      if (c === 0x5c) { out.push(src[++i]!); continue; }
      if (c === 0x22) inString = false;
      continue;
    }
    if (isJsonSpace(c)) continue;
    if (c === 0x22) inString = true;
    out.push(c);
  }
  return Buffer.from(out);
}

/**
 * The raw bytes of each top-level member of a JSON object, as Go's
 * json.Unmarshal into map[string]*json.RawMessage sees them (a repeated key: the last wins).
 */
export function topLevelRawJson(src: Buffer): Map<string, Buffer> {
  const parsed: unknown = JSON.parse(src.toString('utf8'));
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('JSON is not an object');
  const members = new Map<string, Buffer>();
  let i = 0;
  const ws = () => { while (i < src.length && isJsonSpace(src[i]!)) i++; };
  const skipString = () => {
    i++; // opening quote
    while (src[i] !== 0x22) i += src[i] === 0x5c ? 2 : 1;
    i++;
  };
  const skipValue = () => {
    if (src[i] === 0x22) return skipString();
    if (src[i] !== 0x7b && src[i] !== 0x5b) {
      while (i < src.length && src[i] !== 0x2c && src[i] !== 0x7d && src[i] !== 0x5d && !isJsonSpace(src[i]!)) i++;
      return;
    }
    let depth = 0;
    do {
      const c = src[i];
      if (c === 0x22) { skipString(); continue; }
      if (c === 0x7b || c === 0x5b) depth++;
      else if (c === 0x7d || c === 0x5d) depth--;
      i++;
    } while (depth > 0);
  };
  ws();
  i++; // '{'
  ws();
  while (src[i] !== 0x7d) {
    const keyStart = i;
    skipString();
    const key = JSON.parse(src.subarray(keyStart, i).toString('utf8')) as string;
    ws();
    i++; // ':'
    ws();
    const valueStart = i;
    skipValue();
    members.set(key, src.subarray(valueStart, i));
    ws();
    if (src[i] === 0x2c) { i++; ws(); }
  }
  return members;
}

/** A parsed JSON value that keeps what JSON.parse loses: member order, repeated keys, number text. */
export type JsonTree =
  | { t: 'null' } | { t: 'bool'; v: boolean } | { t: 'num'; raw: string } | { t: 'str'; v: string; raw: string }
  | { t: 'arr'; v: JsonTree[] } | { t: 'obj'; v: [string, JsonTree][] };

export function parseJsonTree(text: string): JsonTree {
  JSON.parse(text); // validity (and its error message) first; the walk below then trusts the syntax
  let i = 0;
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++; };
  const token = (): string => {
    const start = i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return text.slice(start, i);
  };
  const str = (): string => JSON.parse(token()) as string;
  const value = (): JsonTree => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const v: [string, JsonTree][] = [];
      for (ws(); text[i] !== '}'; ws()) {
        if (text[i] === ',') { i++; ws(); }
        const k = str();
        ws();
        i++; // ':'
        v.push([k, value()]);
      }
      i++;
      return { t: 'obj', v };
    }
    if (c === '[') {
      i++;
      const v: JsonTree[] = [];
      for (ws(); text[i] !== ']'; ws()) {
        if (text[i] === ',') i++;
        v.push(value());
      }
      i++;
      return { t: 'arr', v };
    }
    if (c === '"') {
      const raw = token();
      return { t: 'str', v: JSON.parse(raw) as string, raw };
    }
    if (text.startsWith('true', i)) { i += 4; return { t: 'bool', v: true }; }
    if (text.startsWith('false', i)) { i += 5; return { t: 'bool', v: false }; }
    if (text.startsWith('null', i)) { i += 4; return { t: 'null' }; }
    const m = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400))!;
    i += m[0].length;
    return { t: 'num', raw: m[0] };
  };
  return value();
}
