/**
 * JSON text for the fixture registry, in a fixed form or in the shifting forms Docker Hub's v1
 * registry produced in 2015 (docker/hub-feedback#488): keys in another order, other
 * whitespace, non-ASCII and "/" escaped or not, default-valued keys added or dropped.
 * Independent of lib/ on purpose: the client must not be tested against its own serializer.
 */

/** A number written exactly as given (`1.0`, `1e5`, `123456789012345678901234567890`). */
export class Num {
  constructor(readonly text: string) {}
}

export const num = (text: string): Num => new Num(text);

export type FJson = null | boolean | number | string | Num | FJson[] | { [key: string]: FJson };
export type FObject = { [key: string]: FJson };

export type Rng = () => number;

/** A small seeded generator (mulberry32), so a fixture's "randomness" can be replayed. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TextStyle {
  /** null: one line. */
  indent: string | null;
  colon: string;
  comma: string;
  escapeNonAscii: boolean;
  escapeSlash: boolean;
  /** Key order: as built, or shuffled. */
  shuffle: boolean;
  /** Write floats in another literal of the same double (1.0 → 1e+0). */
  altFloats: boolean;
}

export const FIXED_STYLE: TextStyle = {
  indent: null, colon: ':', comma: ',', escapeNonAscii: false, escapeSlash: false, shuffle: false, altFloats: false,
};

export function randomStyle(r: Rng): TextStyle {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  return {
    indent: pick([null, null, '  ', '    ', '\t']),
    colon: pick([':', ': ', ' : ']),
    comma: pick([',', ', ']),
    escapeNonAscii: r() < 0.5,
    escapeSlash: r() < 0.5,
    shuffle: true,
    altFloats: r() < 0.5,
  };
}

function quote(s: string, st: TextStyle): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20) out += '\\u' + c.toString(16).padStart(4, '0');
    else if (ch === '/' && st.escapeSlash) out += '\\/';
    else if (c > 0x7e && st.escapeNonAscii) {
      for (let i = 0; i < ch.length; i++) out += '\\u' + ch.charCodeAt(i).toString(16).padStart(4, '0');
    } else out += ch;
  }
  return out + '"';
}

function numberText(n: Num | number, st: TextStyle): string {
  const text = typeof n === 'number' ? String(n) : n.text;
  if (!st.altFloats || !/[.eE]/.test(text)) return text;
  const x = Number(text);
  // toExponential() without digits is the shortest round-trip form: the same double.
  return Number.isFinite(x) && !Object.is(x, -0) ? x.toExponential() : text;
}

function shuffled<T>(xs: T[], r: Rng): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export function writeJson(v: FJson, st: TextStyle = FIXED_STYLE, r: Rng = Math.random, depth = 0): string {
  const nl = (d: number) => (st.indent === null ? '' : '\n' + st.indent.repeat(d));
  if (v === null) return 'null';
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return quote(v, st);
  if (typeof v === 'number' || v instanceof Num) return numberText(v, st);
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return '[' + v.map((e) => nl(depth + 1) + writeJson(e, st, r, depth + 1)).join(st.comma) + nl(depth) + ']';
  }
  let keys = Object.keys(v);
  if (keys.length === 0) return '{}';
  if (st.shuffle) keys = shuffled(keys, r);
  return '{' + keys.map((k) => nl(depth + 1) + quote(k, st) + st.colon + writeJson(v[k]!, st, r, depth + 1)).join(st.comma) + nl(depth) + '}';
}

const CONFIG_DEFAULTS: Array<[string, FJson]> = [
  ['ExposedPorts', null], ['MacAddress', ''], ['NetworkDisabled', false], ['PortSpecs', null], ['VolumeDriver', ''],
];

function isDefault(v: FJson | undefined, d: FJson): boolean {
  return v === d;
}

function clone(v: FJson): FJson {
  if (v === null || typeof v !== 'object' || v instanceof Num) return v;
  if (Array.isArray(v)) return v.map(clone);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)]));
}

/** A copy with detjson's default-valued keys randomly added (when absent) or dropped (when default). */
export function shuffleDefaults(j: FObject, r: Rng): FObject {
  const out = clone(j) as FObject;
  const toggle = (o: FObject, k: string, d: FJson) => {
    if (!(k in o)) {
      if (r() < 0.5) o[k] = d;
    } else if (isDefault(o[k], d) && r() < 0.5) delete o[k];
  };
  toggle(out, 'Size', 0);
  for (const part of ['config', 'container_config']) {
    const c = out[part];
    if (c !== null && typeof c === 'object' && !Array.isArray(c) && !(c instanceof Num)) {
      for (const [k, d] of CONFIG_DEFAULTS) toggle(c, k, d);
    }
  }
  return out;
}
