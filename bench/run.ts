// `npm run bench`: every comparison against its real peer, measured in this same run.
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { printTable, type Comparison } from './measure.js';
import { benchFetch } from './fetch.js';
import { benchNar } from './nar.js';
import { benchPull } from './pull.js';
import { benchMirror } from './mirror.js';
import { benchSync } from './sync.js';
import { benchAudit } from './audit.js';
import { benchBuild } from './build.js';

const suites: Record<string, (work: string) => Promise<Comparison[]>> = {
  nar: benchNar,
  fetch: benchFetch,
  pull: benchPull,
  mirror: benchMirror,
  sync: benchSync,
  audit: benchAudit,
  build: benchBuild,
};

const wanted = process.argv.slice(2);
const work = process.env.BENCH_DIR ?? join(tmpdir(), 'fetch-image-bench');
const rows: Comparison[] = [];
for (const [name, suite] of Object.entries(suites)) {
  if (wanted.length && !wanted.includes(name)) continue;
  console.log(`== ${name}`);
  rows.push(...(await suite(join(work, name))));
}
console.log('');
printTable(rows);
