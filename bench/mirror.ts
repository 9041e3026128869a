// Issue 6's benchmark: export + import of a ~200 MB closure through a binary cache directory,
// `fetch-image mirror export/import` against `nix copy --to file://` + `nix copy --from file://`,
// both sides signing and verifying. Measured in the same run, alternating (bench/measure.ts).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compare, measure, type Comparison } from './measure.js';
import { CLI_PATH } from '../test/helpers/cli.js';

const CLI = `node ${CLI_PATH}`;
const NIX = 'nix --extra-experimental-features nix-command';

/** Real trees of source-like and binary-like files, about 200 MB together (BENCH_MIRROR_TREES overrides). */
function trees(): string[] {
  const wanted = (process.env.BENCH_MIRROR_TREES ?? '/usr/include /usr/lib/python3 /usr/share/perl').split(/\s+/).filter(Boolean);
  const found = wanted.filter((p) => existsSync(p));
  if (!found.length) throw new Error('no trees for the mirror bench: set BENCH_MIRROR_TREES to directories of about 200 MB together');
  return found;
}

async function sh(cmd: string): Promise<string> {
  const { execSync } = await import('node:child_process');
  return execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

export async function benchMirror(work: string): Promise<Comparison[]> {
  mkdirSync(work, { recursive: true });
  const src = trees();
  const ourSrc = join(work, 'our-src');
  const nixSrc = join(work, 'nix-src');
  // Nix adds the trees; our store gets the very same paths through `mirror unbundle` of
  // `nix-store --export` (which also re-proves their content addresses).
  const paths: string[] = [];
  for (const tree of src) paths.push(await sh(`nix-store --store 'local?root=${nixSrc}' --add-fixed --recursive sha256 ${tree}`));
  await sh(`nix-store --store 'local?root=${nixSrc}' --export ${paths.join(' ')} | ${CLI} --quiet --store ${ourSrc} mirror unbundle - > /dev/null`);
  await sh(`${CLI} --store ${ourSrc} store verify --check-contents > /dev/null`);
  const size = Number(await sh(`du -sbL ${src.join(' ')} | awk '{s+=$1} END {print s}'`));
  console.log(`closure: ${paths.length} paths from ${src.join(', ')} (${(size / 1e6).toFixed(0)} MB)`);
  const sk = join(work, 'key.secret');
  const pk = join(work, 'key.public');
  if (!existsSync(sk)) await sh(`nix-store --generate-binary-cache-key bench-1 ${sk} ${pk}`);
  const pub = (await sh(`cat ${pk}`)).trim();
  writeFileSync(join(work, 'paths'), paths.join('\n'));
  const P = paths.join(' ');

  const scratch = ['our-cache', 'our-dst', 'nix-cache', 'nix-dst'].map((d) => join(work, d));
  const setup = async () => {
    for (const d of scratch) {
      await measure(`chmod -R u+w ${d} 2>/dev/null; rm -rf ${d}`);
    }
  };
  const [ourCache, ourDst, nixCache, nixDst] = scratch as [string, string, string, string];
  const ours = (c?: string) =>
    `${CLI} --quiet --store ${ourSrc} mirror export --to ${ourCache} ${c ? `--compression ${c}` : ''} --sign-key ${sk} ${P} && ` +
    `${CLI} --quiet --store ${ourDst} mirror import --from ${ourCache} --all --trusted-key '${pub}'`;
  const peer = (c?: string) =>
    `${NIX} copy --store 'local?root=${nixSrc}' --to 'file://${nixCache}?secret-key=${sk}${c ? `&compression=${c}` : ''}' ${P} && ` +
    `${NIX} copy --from 'file://${nixCache}' --to 'local?root=${nixDst}' --option trusted-public-keys '${pub}' ${P}`;

  const rows: Comparison[] = [];
  rows.push(await compare('mirror export+import, defaults (ours zstd, Nix xz)', ours(), peer(), { runs: 3, target: '≤ 0.7×', setup }));
  rows.push(await compare('mirror export+import, zstd both', ours('zstd'), peer('zstd'), { runs: 5, target: '≤ 0.7×', setup }));
  rows.push(await compare('mirror export+import, none both', ours('none'), peer('none'), { runs: 5, target: '≤ 0.7×', setup }));
  rows.push(await compare('mirror export+import, xz both', ours('xz'), peer('xz'), { runs: 3, target: '≤ 0.7×', setup }));
  await setup();
  await sh(`chmod -R u+w ${ourSrc} ${nixSrc}; rm -rf ${ourSrc} ${nixSrc}`);
  return rows;
}
