// The hot, scriptable commands (`hash path|file`, `nar dump`) run without loading yargs, which
// alone costs ~75 ms of start-up — more than hashing a typical source tree. Only the plain forms
// are handled here; anything else (help, unknown flags, mistakes) falls through to the full
// parser, so behaviour and messages stay those of app.ts.
import { isatty } from 'node:tty';
import type { HashAlgo, HashFormat } from '../lib/hash/index.js';

const FORMAT_FLAGS: Record<string, HashFormat> = { '--base16': 'base16', '--base32': 'nix32', '--base64': 'base64', '--sri': 'sri' };
const ALGOS = new Set(['md5', 'sha1', 'sha256', 'sha512']);

export async function tryFastPath(argv: readonly string[]): Promise<boolean> {
  if (argv.includes('build') && (await (await import('./build-fast.js')).tryBuildFast(argv))) return true;
  if (argv.length < 3 || argv.some((a) => a === '--help' || a === '-h' || a === '--json' || a.startsWith('--store'))) return false;
  const [group, command, ...rest] = argv;
  if (group === 'nar' && command === 'dump' && rest.length === 1 && !rest[0]!.startsWith('-')) {
    // isatty(), not process.stdout: creating that stream would make a pipe non-blocking.
    if (isatty(1)) return false;
    // Nothing else to overlap with here, so one thread reading and writing with blocking calls
    // beats a worker handing chunks to an async stream (0.14 s against 0.18 s on /usr/share/doc).
    const [{ narChunksRecycled }, { writeAllSync }] = await Promise.all([import('../lib/nar/index.js'), import('./write-stream.js')]);
    for (const chunk of narChunksRecycled(Buffer.from(rest[0]!))) writeAllSync(1, chunk);
    return true;
  }
  if (group !== 'hash' || (command !== 'path' && command !== 'file')) return false;
  let format: HashFormat = 'sri';
  let algo: HashAlgo = 'sha256';
  let path: string | undefined;
  let formats = 0;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (FORMAT_FLAGS[a]) {
      format = FORMAT_FLAGS[a]!;
      formats++;
    } else if (a === '--type' && ALGOS.has(rest[i + 1] ?? '')) {
      algo = rest[++i] as HashAlgo;
    } else if (!a.startsWith('-') && path === undefined) {
      path = a;
    } else {
      return false;
    }
  }
  if (path === undefined || formats > 1) return false;
  const { hashFlat, hashPath } = await import('../lib/nar/index.js');
  const { hash } = command === 'path' ? await hashPath(path, algo) : await hashFlat(path, algo);
  process.stdout.write(hash.format(format) + '\n');
  return true;
}
