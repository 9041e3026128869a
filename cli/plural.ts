/** Irregular plurals of the nouns our messages count. */
const IRREGULAR: Readonly<Record<string, string>> = { retry: 'retries', entry: 'entries', directory: 'directories' };

/** `1 path`, `2 paths`, `0 paths`: the one way messages count things. */
export function count(n: number, noun: string, plural: string = IRREGULAR[noun] ?? `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}
