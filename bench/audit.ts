// Issue 16's benchmark: `fetch-image audit` of a lock of 20 image pins against the same work
// done with the tools people use today, in the same run: `skopeo inspect` per tag (drift), and
// `skopeo copy … docker-archive:` + `nix-hash --flat` per pin (refetch), four at a time as our
// --jobs default. The images share a base layer, as the images of one organisation do.
import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeImage, pushImage } from '../store-fixtures/images/index.js';
import { startRegistry } from '../test/helpers/registry.js';
import { CLI_PATH } from '../test/helpers/cli.js';
import { compare, type Comparison } from './measure.js';

const IMAGES = 20;
const BASE_BYTES = 8 * 1000 * 1000;
const OWN_BYTES = 1000 * 1000;

export async function benchAudit(work: string): Promise<Comparison[]> {
  mkdirSync(work, { recursive: true });
  const reg = await startRegistry();
  try {
    const refs: string[] = [];
    for (let i = 0; i < IMAGES; i++) {
      const layout = join(work, `image-${i}`);
      if (!existsSync(join(layout, 'index.json'))) {
        await makeImage(layout, {
          layers: [
            { entries: [{ type: 'random', path: 'base.bin', size: BASE_BYTES, seed: 1 }] },
            { entries: [{ type: 'random', path: `own-${i}.bin`, size: OWN_BYTES, seed: 100 + i }] },
          ],
        }, 'v1');
      }
      await pushImage(layout, reg.port, `bench/app${i}`, '1.0', { sourceTag: 'v1' });
      refs.push(`${reg.host}/bench/app${i}:1.0`);
    }
    const store = join(work, 'store');
    const lock = join(work, 'bench.lock.json');
    rmSync(lock, { force: true });
    execSync(`node ${CLI_PATH} --store ${store} --quiet lock --tls-verify=false --lock ${lock} ${refs.join(' ')}`, { stdio: 'inherit' });
    execSync('sync');
    const list = join(work, 'refs.txt');
    writeFileSync(list, `${refs.join('\n')}\n`);
    const pinned = join(work, 'pinned.txt');
    // The peer's refetch takes the digests the lock pinned, as a script over a pin list would.
    const lockJson = JSON.parse(execSync(`cat ${lock}`).toString()) as { images: { imageName: string; imageDigest: string; finalImageTag: string }[] };
    writeFileSync(pinned, lockJson.images.map((p) => `${p.imageName}@${p.imageDigest}`).join('\n') + '\n');
    const out = join(work, 'peer-out');
    const audit = `node ${CLI_PATH} --store ${store} --quiet audit --tls-verify=false --json`;
    console.log(`audit: ${IMAGES} image pins (shared ${BASE_BYTES / 1e6} MB base layer + ${OWN_BYTES / 1e6} MB each) on ${reg.host}`);
    const rows = [
      await compare(
        `audit drift, ${IMAGES} image pins`,
        `${audit} --checks drift ${lock} > /dev/null`,
        `xargs -P 4 -I{} skopeo inspect --tls-verify=false --format '{{.Digest}}' docker://{} < ${list} > /dev/null`,
        { runs: 5, target: '≤ 0.5×' },
      ),
      await compare(
        `audit refetch, ${IMAGES} image pins`,
        `${audit} --checks refetch ${lock} > /dev/null`,
        `mkdir -p ${out} && xargs -P 4 -I{} sh -c 'f=${out}/$(echo {} | md5sum | cut -c1-8).tar; rm -f $f; skopeo copy -q --src-tls-verify=false docker://{} docker-archive:$f:app:1.0 && nix-hash --flat --type sha256 $f' < ${pinned} > /dev/null`,
        { runs: 3, target: '≤ 0.5×', setup: async () => { rmSync(out, { recursive: true, force: true }); } },
      ),
    ];
    return rows;
  } finally {
    await reg.stop();
  }
}
