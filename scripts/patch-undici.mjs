// undici 7 (the last line for Node 20) mishandles a server that closes the connection (HTTP/1.0,
// or `Connection: close`) while the response body is paused under back-pressure:
// nodejs/undici#5360. Parser.finish() asserted `!this.paused`, which crashes the process with an
// uncatchable AssertionError; and once that assertion is gone (#5389), the paused parser still
// never reaches the end of the message, so a complete Content-Length body fails as "closed".
// Upstream fixes both in undici 8 (#5474, Node 22 only): finish() resumes the paused parser and
// drives it through what is left before finishing. This applies the same idea to the installed
// copy. It is idempotent, and refuses to guess if the code moved.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const root = dirname(require.resolve('undici/package.json'));
const file = join(root, 'lib', 'dispatcher', 'client-h1.js');
const src = readFileSync(file, 'utf8');

const head = 'finish () {\n    assert(currentParser === null)\n    assert(this.ptr != null)\n';
const original = `${head}    assert(!this.paused)\n`;
const firstPatch = `${head}    // assert(!this.paused) removed: nodejs/undici#5360, #5389 (patched by fetch-image)\n`;
const fixed = `${head}    // Paused under back-pressure: resume and let the parser reach the end of the message
    // (Content-Length and chunked bodies complete in execute(), not in llhttp_finish()).
    // nodejs/undici#5360, as #5474 fixes it (patched by fetch-image).
    for (let spins = 0; this.paused && this.ptr && spins < 64; spins++) {
      if (spins > 0 && this.socket.destroyed) break
      this.llhttp.llhttp_resume(this.ptr)
      this.paused = false
      this.execute(this.socket.read() || EMPTY_BUF)
    }
    if (!this.ptr) return null
`;

if (src.includes(fixed)) process.exit(0);
const from = src.includes(original) ? original : src.includes(firstPatch) ? firstPatch : undefined;
if (from) {
  writeFileSync(file, src.replace(from, fixed));
  console.log(`patched ${file} (nodejs/undici#5360)`);
} else if (/finish \(\) \{[^}]*assert\(!this\.paused\)/.test(src)) {
  console.error(`fetch-image: cannot apply the undici#5360 fix to ${file}: its code changed; check the undici version`);
  process.exit(1);
}
// Otherwise this undici already has the upstream fix: nothing to do.
