/**
 * The `repositories` file exactly as pull.sh wrote it:
 *
 *     jshon -n object -n object -s "$imageId" -i "$imageTag" -i "$imageName" > $out/repositories
 *
 * jshon prints json_dumps(root, dumps_flags) and a newline. The dumps_flags word in Debian's
 * jshon 20131010 binary is 0x501 = JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_ESCAPE_SLASH
 * (read from its .data section), and its output agrees: one space per level, "key": value,
 * "/" written as "\/", control characters as \b \f \n \r \t or \u00XX (upper-case hex), DEL and
 * non-ASCII as raw UTF-8. test/v1-detjson.test.ts compares this with the real jshon.
 */

const HEX = '0123456789ABCDEF';

/** A JSON string as jansson's dump writes it with JSON_ESCAPE_SLASH and without JSON_ENSURE_ASCII. */
export function janssonString(s: string, what = 'string'): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      // jansson (and jshon's -s) take UTF-8 only; a lone surrogate has no UTF-8 form.
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) throw new Error(`${what} '${s}' is not valid Unicode (lone surrogate)`);
      out += s[i]! + s[i + 1]!;
      i++;
      continue;
    }
    switch (c) {
      case 0x22: out += '\\"'; break;
      case 0x5c: out += '\\\\'; break;
      case 0x2f: out += '\\/'; break;
      case 0x08: out += '\\b'; break;
      case 0x0c: out += '\\f'; break;
      case 0x0a: out += '\\n'; break;
      case 0x0d: out += '\\r'; break;
      case 0x09: out += '\\t'; break;
      default:
        out += c < 0x20 ? '\\u00' + HEX[c >> 4]! + HEX[c & 15]! : s[i]!;
    }
  }
  return out + '"';
}

/** `{"<name>": {"<tag>": "<id>"}}` in jshon's layout, with its trailing newline. */
export function repositoriesFile(name: string, tag: string, imageId: string): string {
  return `{\n ${janssonString(name, 'image name')}: {\n  ${janssonString(tag, 'tag')}: ${janssonString(imageId, 'image id')}\n }\n}\n`;
}
