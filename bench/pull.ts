// Issue 4's benchmark: pulling from the local registry into a fresh store, against what
// nix-prefetch-docker does (skopeo copy … docker-archive: then nix-hash --flat), and pulling a
// second image that shares every layer.
import { mkdirSync, rmSync } from 'node:fs';
import { execSync } from 'node:child_process';
import { basename, join } from 'node:path';
import { makeImage, pushImage, type ImageSpec } from '../store-fixtures/images/index.js';
import { startRegistry } from '../test/helpers/registry.js';
import { compare, measure, type Comparison } from './measure.js';
import { CLI_PATH } from '../test/helpers/cli.js';

const CLI = `node ${CLI_PATH}`;

/**
 * Layers that compress like real ones (pseudo-text, ~3:1 with gzip) plus some incompressible
 * bytes, so gunzip and hashing have the work a real image gives them.
 */
function image(layers: number, bytesPerLayer: number, tag: string): ImageSpec {
  return {
    layers: Array.from({ length: layers }, (_, i) => ({
      entries: [
        { type: 'text' as const, path: `usr/share/layer${i}.txt`, size: Math.round(bytesPerLayer * 0.9), seed: i + 1 },
        { type: 'random' as const, path: `data/layer${i}.bin`, size: Math.round(bytesPerLayer * 0.1), seed: i + 1 },
        { type: 'file' as const, path: `etc/layer${i}`, content: `${tag} ${i}\n`.repeat(1000) },
      ],
    })),
    runConfig: { Cmd: ['/bin/sh'], Labels: { bench: tag } },
  };
}

export async function benchPull(work: string): Promise<Comparison[]> {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const reg = await startRegistry();
  const rows: Comparison[] = [];
  try {
    // ~100 MB compressed: 280 MB of layer content at about 3:1 (the random tenth does not compress).
    const one = await makeImage(join(work, 'one'), image(1, 280_000_000, 'one'), 'v1');
    const oneDigest = await pushImage(one.dir, reg.port, 'bench/one', 'v1', { sourceTag: 'v1' });
    const five = await makeImage(join(work, 'five'), image(5, 56_000_000, 'five'), 'v1');
    const fiveDigest = await pushImage(five.dir, reg.port, 'bench/five', 'v1', { sourceTag: 'v1' });
    // Same layers, another config: shares every layer with `five`.
    const twin = await makeImage(join(work, 'twin'), { ...image(5, 56_000_000, 'five'), runConfig: { Cmd: ['/bin/true'] } }, 'v1');
    await pushImage(twin.dir, reg.port, 'bench/twin', 'v1', { sourceTag: 'v1' });
    // The images just generated and pushed (~1 GB) would otherwise still be flushing to disk
    // during the first runs, slowing whichever side they fall on.
    execSync('sync');

    const store = join(work, 'store');
    const out = join(work, 'skopeo.tar');
    const fresh = async () => {
      rmSync(store, { recursive: true, force: true });
      rmSync(out, { force: true });
    };
    const anchor = (name: string, digest: string) =>
      `skopeo --insecure-policy copy -q --src-tls-verify=false docker://${reg.host}/${name}@${digest} docker-archive:${out}:${name}:v1 && nix-hash --flat --type sha256 --base32 ${out} >/dev/null`;
    rows.push(await compare('pull 1 layer (~100 MB gz)', `${CLI} --store ${store} --json pull --tls-verify=false ${reg.host}/bench/one@${oneDigest} >/dev/null`, anchor('bench/one', oneDigest), { setup: fresh, target: '≤ 0.6×, RSS ≤ 150 MiB' }));
    rows.push(await compare('pull 5 layers (~100 MB gz)', `${CLI} --store ${store} --json pull --tls-verify=false ${reg.host}/bench/five@${fiveDigest} >/dev/null`, anchor('bench/five', fiveDigest), { setup: fresh, target: '≤ 0.6×, RSS ≤ 150 MiB' }));

    // Second image sharing every layer: the store already holds `five`; before each run the
    // twin's own output (only) is removed again, so the layers come from five's archive.
    const primed = join(work, 'primed');
    rmSync(primed, { recursive: true, force: true });
    await measure(`${CLI} --store ${primed} --json pull --tls-verify=false ${reg.host}/bench/five@${fiveDigest} >/dev/null`);
    const twinPull = `${CLI} --store ${primed} --json pull --tls-verify=false ${reg.host}/bench/twin:v1`;
    const twinPath = (JSON.parse(execSync(twinPull).toString()) as { storePath: string }).storePath;
    const dropTwin = `rm -rf ${join(primed, twinPath)} ${join(primed, 'nix/var/fetch-image/db', basename(twinPath).slice(0, 32))}.json`;
    rows.push(await compare('pull 2nd image sharing all layers', `${dropTwin}; ${twinPull} >/dev/null`, anchor('bench/five', fiveDigest), { setup: fresh, target: '≤ 0.1×' }));
  } finally {
    await reg.stop();
  }
  return rows;
}
