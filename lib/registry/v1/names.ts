/** Validation of what a v1 pull puts into URLs and file names. */

const COMPONENT = /^[a-z0-9_.-]+$/;

/** v1 repository names: `repo` or `namespace/repo`, lower-case letters, digits, `_`, `.`, `-`. */
export function checkV1Name(name: string): string {
  const parts = name.split('/');
  const ok = name.length <= 255 && parts.length <= 2 &&
    parts.every((p) => COMPONENT.test(p) && p !== '.' && p !== '..');
  if (!ok) throw new Error(`invalid v1 repository name '${name}': expected [namespace/]repo of [a-z0-9_.-]`);
  return name;
}

/** Docker's tag grammar: a word character first, then up to 127 of [A-Za-z0-9_.-]. */
export function checkV1Tag(tag: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) {
    throw new Error(`invalid tag '${tag}': expected [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  return tag;
}

export function isV1ImageId(id: unknown): id is string {
  return typeof id === 'string' && /^[0-9a-f]{64}$/.test(id);
}

/** v1 image ids are 64 lower-case hex digits; they become directory names, so nothing else passes. */
export function checkV1ImageId(id: string, where = 'image id'): string {
  if (!isV1ImageId(id)) throw new Error(`${where} '${String(id).slice(0, 80)}' is not a v1 image id (64 lower-case hex digits)`);
  return id;
}
