// undici 7 (the last line for Node 20) crashes the process with an uncatchable
// `AssertionError: assert(!this.paused)` when a server closes the connection (HTTP/1.0, or
// `Connection: close`) while the response body is paused under back-pressure: nodejs/undici#5360.
// The fix upstream (nodejs/undici#5389, undici 8 only) removes that assertion from
// Parser.finish(), whose llhttp call already handles the paused state. This applies the same
// one-line change to the installed copy; it is idempotent and refuses to guess if the code moved.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const root = dirname(require.resolve('undici/package.json'));
const file = join(root, 'lib', 'dispatcher', 'client-h1.js');
const src = readFileSync(file, 'utf8');
const broken = 'finish () {\n    assert(currentParser === null)\n    assert(this.ptr != null)\n    assert(!this.paused)\n';
const fixed = 'finish () {\n    assert(currentParser === null)\n    assert(this.ptr != null)\n    // assert(!this.paused) removed: nodejs/undici#5360, #5389 (patched by fetch-image)\n';
if (src.includes(fixed)) process.exit(0);
if (src.includes(broken)) {
  writeFileSync(file, src.replace(broken, fixed));
  console.log(`patched ${file} (nodejs/undici#5360)`);
} else if (/finish \(\) \{[^}]*assert\(!this\.paused\)/.test(src)) {
  console.error(`fetch-image: cannot apply the undici#5360 fix to ${file}: its code changed; check the undici version`);
  process.exit(1);
}
// Otherwise this undici already has the upstream fix: nothing to do.
