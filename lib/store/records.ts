// Per-path metadata files (`nix/var/fetch-image/db/<hash part>.json`) as found on disk: a record
// is used only when every field a valid path needs is there and well-formed.
import { parseHash } from '../hash/index.js';
import type { PathInfo } from './local-store.js';
import { isStorePath } from './path.js';

/** The record a metadata file holds, or why it cannot be used (truncated, not JSON, fields missing). */
export function parseRecord(text: string, storeDir: string): PathInfo | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return text.length === 0 ? 'it is empty' : `it is not valid JSON (truncated?): ${(e as Error).message}`;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'it is not a JSON object';
  const r = v as Record<string, unknown>;
  if (typeof r.path !== 'string' || !isStorePath(r.path, storeDir)) return `its 'path' is not a path in ${storeDir}`;
  if (typeof r.narHash !== 'string') return "it has no 'narHash'";
  try {
    parseHash(r.narHash);
  } catch (e) {
    return `its narHash is unusable: ${(e as Error).message}`;
  }
  if (typeof r.narSize !== 'number' || !Number.isSafeInteger(r.narSize) || r.narSize < 0) return "its 'narSize' is not a size";
  if (!Array.isArray(r.references) || r.references.some((x) => typeof x !== 'string' || !isStorePath(x, storeDir))) return "its 'references' are not store paths";
  if (!Array.isArray(r.signatures) || r.signatures.some((x) => typeof x !== 'string')) return "its 'signatures' are not strings";
  if (r.ca !== undefined && typeof r.ca !== 'string') return "its 'ca' is not a string";
  if (r.deriver !== undefined && (typeof r.deriver !== 'string' || !isStorePath(r.deriver, storeDir))) return "its 'deriver' is not a store path";
  return r as unknown as PathInfo; // every field PathInfo requires was checked above; others are kept as written
}
