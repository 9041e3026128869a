/**
 * The `--list FILE` format: one pinned image per line, `name[:tag]@sha256:<hex>`; blank lines
 * and `#` comments (whole-line or trailing) are ignored. A tag beside the digest is the tag to
 * push in the destination; the digest is what gets copied. Pure: the caller reads the file.
 */
import { parseReference, type ImageReference } from '../registry/index.js';

export interface ListEntry {
  ref: ImageReference;
  /** The explicit tag written beside the digest, if any. */
  tag: string | undefined;
  /** 1-based line number, for messages. */
  line: number;
}

/** Parses the list's text; `where` (the file name) prefixes every error as `where:line:`. */
export function parseListFile(text: string, where: string): ListEntry[] {
  const out: ListEntry[] = [];
  const seen = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/#.*$/, '').trim(); // '#' never occurs in a reference
    if (line === '') continue;
    const n = i + 1;
    if (/\s/.test(line)) throw new Error(`${where}:${n}: expected one reference per line, got '${line}'`);
    let ref: ImageReference;
    try {
      ref = parseReference(line);
    } catch (err) {
      throw new Error(`${where}:${n}: ${(err as Error).message}`);
    }
    if (ref.digest === undefined) throw new Error(`${where}:${n}: '${line}' has no digest: list entries are pinned as name[:tag]@sha256:<hex>`);
    const key = `${ref.name}@${ref.digest}:${ref.tag ?? ''}`;
    const before = seen.get(key);
    if (before !== undefined) throw new Error(`${where}:${n}: '${line}' repeats line ${before}`);
    seen.set(key, n);
    out.push({ ref, tag: ref.tag, line: n });
  }
  return out;
}
