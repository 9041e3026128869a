import stringify from 'json-stable-stringify';

/** One difference between two JSON documents, at a path like `config.Env[1]`. */
export interface JsonChange {
  path: string;
  /** Absent when the key is only in the other document. */
  a?: unknown;
  b?: unknown;
}

export interface JsonDiff {
  /** The documents are equal once keys are sorted (only order or whitespace differs). */
  orderingOnly: boolean;
  changes: JsonChange[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const keyPath = (base: string, key: string): string => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? (base ? `${base}.${key}` : key) : `${base}[${JSON.stringify(key)}]`);

function walk(a: unknown, b: unknown, path: string, out: JsonChange[], limit: number): void {
  if (out.length >= limit) return;
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      const p = keyPath(path, k);
      if (!(k in a)) out.push({ path: p, b: b[k] });
      else if (!(k in b)) out.push({ path: p, a: a[k] });
      else walk(a[k], b[k], p, out, limit);
      if (out.length >= limit) return;
    }
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const p = `${path}[${i}]`;
      if (i >= a.length) out.push({ path: p, b: b[i] });
      else if (i >= b.length) out.push({ path: p, a: a[i] });
      else walk(a[i], b[i], p, out, limit);
      if (out.length >= limit) return;
    }
    return;
  }
  if (stringify(a) !== stringify(b)) out.push({ path: path || '(document)', a, b });
}

/** Compares two parsed JSON values with sorted keys; at most `limit` changes are listed. */
export function diffJson(a: unknown, b: unknown, rawEqual: boolean, limit = 200): JsonDiff {
  const changes: JsonChange[] = [];
  walk(a, b, '', changes, limit);
  return { orderingOnly: changes.length === 0 && !rawEqual, changes };
}

/** Parses bytes as JSON, or undefined when they are not JSON. */
export function parseJsonBytes(bytes: Buffer): { value: unknown } | undefined {
  const text = bytes.toString('utf8');
  if (!/^\s*[[{"]/.test(text)) return undefined;
  try {
    return { value: JSON.parse(text) };
  } catch {
    return undefined;
  }
}
