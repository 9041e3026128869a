// Run by test/sandbox-vm.test.ts as an unprivileged user (runuser): prepares the lower dirs
// and runs the root stage in the vm sandbox through the library's public face.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { prepareLowerDir, readLowerForm, runRootStage } from '../../lib/sandbox/index.js';

interface Job {
  layers: string[];
  work: string;
  upper: string;
  storeDir: { real: string; logical: string };
  script: string;
  env: Record<string, string>;
}

const job = JSON.parse(process.argv[2] ?? '') as Job;
mkdirSync(join(job.work, 'cache'), { recursive: true });
const lowerDirs: string[] = [];
for (const [i, tar] of job.layers.entries()) {
  const dir = join(job.work, `lower-${i}`);
  await prepareLowerDir(tar, dir);
  lowerDirs.push(dir);
}
const forms = await Promise.all(lowerDirs.map(async (d) => (await readLowerForm(d)).form));
const r = await runRootStage('vm', {
  lowerDirs, upperDir: job.upper, storeDir: job.storeDir, script: job.script, env: job.env,
  network: false, timeoutMs: 600_000, memoryMiB: 256, diskSizeMiB: 256,
});
console.log(JSON.stringify({ exitCode: r.exitCode, accel: r.accel, forms, outputTail: r.outputTail }));
