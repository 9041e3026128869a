// Issue 6 part 6's benchmark: `fetch-image mirror sync` against `skopeo copy docker:// docker://`
// between two local registries (Debian's docker-registry): a five-layer ~100 MB image (the
// target row), and a ~500 MB one that shows how the copy itself compares once start-up (Node
// loading its modules, ~0.15 s here, against a Go binary's few ms) weighs less. Before every run
// the destination registry is restarted on an empty data directory, so that both tools really
// upload every byte.
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeImage, pushImage } from '../store-fixtures/images/index.js';
import { freePort, waitForPort } from '../test/helpers/net.js';
import { compare, type Comparison } from './measure.js';
import { CLI_PATH } from '../test/helpers/cli.js';

const LAYERS = 5;
/** Layer sizes of the two images, and the runs each gets. */
const SIZES = [{ layerBytes: 20 * 1000 * 1000, runs: 5, target: '≤ 0.8×' }, { layerBytes: 100 * 1000 * 1000, runs: 3 }] as const;

interface Served {
  host: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops, empties the data directory and starts again on the same port. */
  reset(): Promise<void>;
}

/** A docker-registry with its data in `dir`, on a fixed free port so restarts keep the address. */
async function serve(dir: string): Promise<Served> {
  const port = await freePort();
  const data = join(dir, 'data');
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'config.yml');
  writeFileSync(config, [
    'version: 0.1', 'log: {level: error}', `storage: {filesystem: {rootdirectory: ${data}}, delete: {enabled: true}}`,
    `http: {addr: 127.0.0.1:${port}, secret: fetch-image-bench}`, '',
  ].join('\n'));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const s: Served = {
    host: `127.0.0.1:${port}`,
    async start() {
      const c = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'ignore'] });
      child = c;
      exited = new Promise((resolve) => c.once('close', () => resolve()));
      await waitForPort(port);
    },
    async stop() {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      child = undefined;
    },
    async reset() {
      await s.stop();
      rmSync(data, { recursive: true, force: true });
      await s.start();
    },
  };
  await s.start();
  return s;
}

export async function benchSync(work: string): Promise<Comparison[]> {
  mkdirSync(work, { recursive: true });
  const src = await serve(join(work, 'src'));
  const dest = await serve(join(work, 'dest'));
  const rows: Comparison[] = [];
  try {
    const cli = `node ${CLI_PATH} mirror sync`;
    for (const size of SIZES) {
      const mb = size.layerBytes / 1e6;
      const layout = join(work, `image-${mb}`);
      if (!existsSync(join(layout, 'index.json'))) {
        await makeImage(layout, {
          layers: Array.from({ length: LAYERS }, (_, i) => ({ compression: 'none' as const, entries: [{ type: 'random' as const, path: `layer${i}.bin`, size: size.layerBytes, seed: 101 + i }] })),
        }, 'v1');
      }
      const repo = `bench/app${mb}`;
      await pushImage(layout, `http://${src.host}`, repo, 'v1');
      execSync('sync'); // the pushed blobs are not still being flushed during the first runs
      const ref = `${src.host}/${repo}:v1`;
      console.log(`sync: ${LAYERS} layers of ${mb} MB, ${src.host} → ${dest.host}`);
      rows.push(await compare(
        `mirror sync (${LAYERS} × ${mb} MB)`,
        `${cli} --quiet --src-tls-verify=false --dest-tls-verify=false ${ref} ${dest.host}/${repo}`,
        `skopeo copy -q --src-tls-verify=false --dest-tls-verify=false docker://${ref} docker://${dest.host}/${repo}:v1`,
        { runs: size.runs, ...('target' in size ? { target: size.target } : {}), setup: () => dest.reset() },
      ));
    }
    return rows;
  } finally {
    await dest.stop();
    await src.stop();
  }
}
