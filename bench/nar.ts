// Issue 2's benchmark: `fetch-image hash path` against `nix-hash`, `fetch-image nar dump`
// against `nix-store --dump`, on a real tree and a generated one with a 2 GB file.
import { existsSync, mkdirSync, readdirSync, statSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { compare, measure, type Comparison } from './measure.js';
import { makeTrickyTree } from '../test/helpers/trees.js';
import { CLI_PATH } from '../test/helpers/cli.js';

const CLI = `node ${CLI_PATH}`;

function treeStats(root: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
    else {
      files++;
      if (st.isFile()) bytes += st.size;
    }
  };
  walk(root);
  return { files, bytes };
}

/** A real tree: a debootstrapped /usr if the bench made one, else this machine's /usr/share/doc-like trees. */
function realTree(): string {
  for (const c of [process.env.BENCH_REAL_TREE, '/usr/share/doc', '/usr/lib']) {
    if (c && existsSync(c)) return c;
  }
  throw new Error('no real tree found: set BENCH_REAL_TREE');
}

export async function benchNar(work: string): Promise<Comparison[]> {
  const rows: Comparison[] = [];
  const real = realTree();
  const rs = treeStats(real);
  console.log(`real tree: ${real} (${rs.files} files, ${(rs.bytes / 1e6).toFixed(0)} MB)`);
  const gen = join(work, 'generated');
  if (!existsSync(gen)) {
    mkdirSync(work, { recursive: true });
    makeTrickyTree(gen, { manyEntries: 5000, bigFileBytes: 64 * 1024 * 1024 });
  }
  for (const [label, tree] of [['real', real], ['generated', gen]] as const) {
    rows.push(await compare(`hash path (${label})`, `${CLI} hash path ${tree}`, `nix-hash --type sha256 ${tree}`, { target: '≤ 0.8×' }));
    rows.push(await compare(`nar dump (${label})`, `${CLI} nar dump ${tree} > /dev/null`, `nix-store --dump ${tree} > /dev/null`, { target: '≤ 1.0×' }));
  }
  // Memory with a 2 GB file in the tree: streamed, so RSS must not grow with it.
  const huge = join(work, 'huge');
  if (!existsSync(join(huge, 'big'))) {
    mkdirSync(huge, { recursive: true });
    await measure(`head -c 2147483648 /dev/urandom > ${join(huge, 'big')}`);
  }
  console.log(`huge tree: ${huge} (${(statSync(join(huge, 'big')).size / 2 ** 30).toFixed(1)} GiB file)`);
  rows.push(await compare('hash path (2 GiB file)', `${CLI} hash path ${huge}`, `nix-hash --type sha256 ${huge}`, { runs: 3, target: 'RSS ≤ 100 MiB' }));
  rows.push(await compare('nar dump (2 GiB file)', `${CLI} nar dump ${huge} > /dev/null`, `nix-store --dump ${huge} > /dev/null`, { runs: 3, target: 'RSS ≤ 100 MiB' }));
  return rows;
}
