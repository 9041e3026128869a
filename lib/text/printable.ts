/**
 * `text` safe to put in a one-line message: control characters (C0, DEL, C1), line and
 * paragraph separators and lone surrogates are escaped (`\n`, `\x1b`, `\u2028`), so hostile
 * input can neither break the line nor send escape codes to a terminal. When the escaped text
 * would pass `max` characters it is clipped there, with an ellipsis.
 */
export function printable(text: string, max = 200): string {
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    let shown = ch;
    if (ch === '\n') shown = '\\n';
    else if (ch === '\r') shown = '\\r';
    else if (ch === '\t') shown = '\\t';
    else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) shown = `\\x${c.toString(16).padStart(2, '0')}`;
    else if (c === 0x2028 || c === 0x2029 || (c >= 0xd800 && c <= 0xdfff)) shown = `\\u${c.toString(16).padStart(4, '0')}`;
    if (out.length + shown.length > max) return `${out}…`;
    out += shown;
  }
  return out;
}
