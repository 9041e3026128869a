import { spawnSync } from 'node:child_process';

/**
 * Whether a real peer program is installed. Locally a missing peer makes the calling test
 * return early with a message; in CI (FETCH_IMAGE_REQUIRE_PEERS=1) it is a failure, so CI can
 * never pass by skipping.
 */
export function havePeer(command: string): boolean {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
  if (found) return true;
  if (process.env.FETCH_IMAGE_REQUIRE_PEERS === '1') {
    throw new Error(`peer '${command}' is required (FETCH_IMAGE_REQUIRE_PEERS=1) but not installed: run .ci/run or apt-get install it`);
  }
  console.warn(`  (peer '${command}' not installed: test passes vacuously here; CI requires it)`);
  return false;
}
