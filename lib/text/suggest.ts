// "Did you mean …?" for command words and config keys: one edit-distance rule, used by the CLI
// (subcommand typos) and by the mirror config file (unknown keys).

/**
 * Optimal-string-alignment Damerau–Levenshtein distance: insertions, deletions, substitutions and
 * swaps of two adjacent characters each cost 1 (so `stroe` is 1 from `store`).
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number): number => d[i * cols + j]!;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      d[i * cols + j] = best;
    }
  }
  return at(a.length, b.length);
}

/**
 * How far a word may be from a name and still count as a typo of it: 1 for names of up to four
 * letters (`url`, `hash`, `pull`: a second edit reaches real words such as `perl`), 2 for longer
 * ones (`mirror`, `store`).
 */
export function typoDistance(name: string): number {
  return name.length <= 4 ? 1 : 2;
}

/**
 * The closest of `names` to `word` (case-insensitive) within typoDistance of it, or undefined.
 * Ties go to the earlier name.
 */
export function suggest(word: string, names: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const name of names) {
    const distance = editDistance(w, name.toLowerCase());
    if (distance > typoDistance(name)) continue;
    if (!best || distance < best.distance) best = { name, distance };
  }
  return best?.name;
}
