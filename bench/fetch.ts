// Issue 3's benchmark: `fetch-image url` of a 500 MB file from loopback into a fresh store, against
// what a nix-prefetch-url user runs: curl -o, nix-hash --flat, nix-store --add-fixed.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { hashFile } from '../lib/hash/index.js';
import { compare, measure, type Comparison } from './measure.js';
import { serveFiles } from './serve.js';
import { CLI_PATH } from '../test/helpers/cli.js';

const CLI = `node ${CLI_PATH}`;

export async function benchFetch(work: string): Promise<Comparison[]> {
  mkdirSync(work, { recursive: true });
  const file = join(work, 'big.bin');
  if (!existsSync(file)) await measure(`head -c 500000000 /dev/urandom > ${file}`);
  const sha = (await hashFile(file, 'sha256')).base16;
  const srv = await serveFiles({ 'big.bin': file });
  const ours = join(work, 'ours-store');
  const theirs = join(work, 'nix-store');
  const dl = join(work, 'download.bin');
  const fresh = async () => {
    for (const d of [ours, theirs, dl]) rmSync(d, { recursive: true, force: true });
  };
  try {
    return [await compare(
      'url fetch 500 MB (loopback)',
      `${CLI} --store ${ours} url ${srv.url}/big.bin --sha256 ${sha}`,
      `curl -sS -o ${dl} ${srv.url}/big.bin && nix-hash --flat --type sha256 ${dl} >/dev/null && nix-store --store 'local?root=${theirs}' --add-fixed sha256 ${dl} >/dev/null`,
      { setup: fresh, target: '≤ 0.7×, RSS ≤ 100 MiB' },
    )];
  } finally {
    await srv.close();
    await fresh();
  }
}
