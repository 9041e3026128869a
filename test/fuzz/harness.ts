import fc from 'fast-check';
import { FuzzFinding } from './oracle.js';

/** One fuzzer: inputs from `arbitrary`, each checked by `check` within `timeoutMs`. */
export interface FuzzTarget<T> {
  /** `<parser>.<property>`, e.g. `nar.restore`. */
  name: string;
  arbitrary: fc.Arbitrary<T>;
  check: (input: T) => Promise<void> | void;
  /** Share of the run count this target gets (slow targets, e.g. those spawning nix-store, less). */
  weight?: number;
  timeoutMs?: number;
  setup?: () => Promise<void> | void;
  teardown?: () => Promise<void> | void;
}

export interface FuzzResult {
  name: string;
  cases: number;
  failures: number;
  ms: number;
  /** The shrunk failing input and what went wrong, for a regression case. */
  counterexample?: string;
  error?: string;
  seed: number;
}

/** The runnable form of a target, its input type erased. */
export interface Fuzzer {
  name: string;
  weight: number;
  run(runs: number, seed: number): Promise<FuzzResult>;
}

const DEFAULT_TIMEOUT_MS = 5000;

export function fuzzer<T>(t: FuzzTarget<T>): Fuzzer {
  const timeoutMs = t.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return {
    name: t.name,
    weight: t.weight ?? 1,
    async run(runs, seed) {
      const started = Date.now();
      await t.setup?.();
      try {
        // The async timeout catches hangs on I/O; the elapsed check catches synchronous parsers
        // that take too long (a loop that never ends would stop the whole run, which is visible).
        const property = fc.asyncProperty(t.arbitrary, async (input) => {
          const t0 = Date.now();
          await t.check(input);
          const took = Date.now() - t0;
          if (took > timeoutMs) throw new FuzzFinding(`took ${took} ms (bound ${timeoutMs} ms)`);
        });
        const details = await fc.check(property, { numRuns: runs, seed, timeout: timeoutMs });
        const result: FuzzResult = { name: t.name, cases: details.numRuns, failures: details.failed ? 1 : 0, ms: Date.now() - started, seed };
        if (details.failed) {
          result.counterexample = fc.stringify(details.counterexample);
          const e = details.errorInstance;
          result.error = e instanceof Error ? e.message : String(e);
        }
        return result;
      } finally {
        await t.teardown?.();
      }
    },
  };
}
