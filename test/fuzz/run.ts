/**
 * `npm run fuzz [-- --runs N] [--only A,B] [--seed S] [--json]`: runs every fuzzer (or those whose
 * names contain one of the comma-separated words) with
 * N cases in all shared by weight (default 10,000), prints cases and failures per parser, the
 * shrunk counterexample of each failure, and exits 1 when anything failed.
 */
import type { FuzzResult } from './harness.js';
import { allFuzzers } from './targets.js';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const total = Number(option('runs') ?? 10_000);
  if (!Number.isSafeInteger(total) || total < 1) throw new Error(`--runs: expected a positive integer, got '${option('runs')}'`);
  const seed = Number(option('seed') ?? Date.now() % 2 ** 31);
  const only = option('only')?.split(',');
  const fuzzers = allFuzzers().filter((f) => only === undefined || only.some((w) => f.name.includes(w)));
  const weights = fuzzers.reduce((s, f) => s + f.weight, 0);
  const results: FuzzResult[] = [];
  for (const f of fuzzers) {
    const r = await f.run(Math.max(1, Math.round((total * f.weight) / weights)), seed);
    results.push(r);
    if (!process.argv.includes('--json')) {
      console.log(`${r.name.padEnd(24)} ${String(r.cases).padStart(9)} cases ${String(r.failures).padStart(2)} failures ${(r.ms / 1000).toFixed(1).padStart(7)} s`);
      if (r.failures) console.log(`  counterexample: ${r.counterexample}\n  ${r.error}`);
    }
  }
  const cases = results.reduce((s, r) => s + r.cases, 0);
  const failures = results.reduce((s, r) => s + r.failures, 0);
  if (process.argv.includes('--json')) console.log(JSON.stringify({ seed, cases, failures, results }, null, 2));
  else console.log(`total: ${cases} cases, ${failures} failures, seed ${seed}`);
  process.exitCode = failures ? 1 : 0;
}

main().catch((err: unknown) => {
  console.error(`fuzz: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 2;
});
