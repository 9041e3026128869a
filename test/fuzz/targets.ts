import type { Fuzzer } from './harness.js';
import { archiveFuzzers } from './targets-archives.js';
import { bundleFuzzers } from './targets-bundle.js';
import { narFuzzers } from './targets-nar.js';
import { textFuzzers } from './targets-text.js';

/** Every fuzzer, in the order the runner reports them. */
export function allFuzzers(): Fuzzer[] {
  return [...narFuzzers(), ...archiveFuzzers(), ...bundleFuzzers(), ...textFuzzers()];
}
