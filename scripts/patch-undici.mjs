// undici 7 (the last line for Node 20) mishandles a server that closes the connection (HTTP/1.0,
// or `Connection: close`) while the response body is paused under back-pressure:
// nodejs/undici#5360. Parser.finish() asserted `!this.paused`, which crashes the process with an
// uncatchable AssertionError; and once that assertion is gone (#5389), the paused parser still
// never reaches the end of the message, so a complete Content-Length body fails as "closed".
// Upstream fixes both in undici 8 (#5474, Node 22 only): finish() resumes the paused parser and
// drives it to the end of the message. This applies that idea, for the case it is needed in (a
// complete Content-Length body), to the installed copy. It is idempotent (and upgrades its own
// earlier versions), and refuses to guess if the code moved.
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
const fixed = `${head}    // Paused under back-pressure with every body byte delivered: only the end of the message is
    // pending, and llhttp_finish() cannot reach it; resume so that execute() completes it.
    // (nodejs/undici#5360 as #5474 fixes it; patched by fetch-image. A truncated body keeps the
    // old path: its error comes once the reader has taken what did arrive.)
    if (this.paused && this.contentLength && this.bytesRead === parseInt(this.contentLength, 10)) {
      this.llhttp.llhttp_resume(this.ptr)
      this.paused = false
      this.execute(EMPTY_BUF)
    }
    if (!this.ptr) return null
`;

if (src.includes(fixed)) process.exit(0);
const secondPatch = /finish \(\) \{\n    assert\(currentParser === null\)\n    assert\(this\.ptr != null\)\n    \/\/ Paused under back-pressure[\s\S]*?if \(!this\.ptr\) return null\n/.exec(src)?.[0];
const from = src.includes(original) ? original : src.includes(firstPatch) ? firstPatch : secondPatch;
if (from) {
  writeFileSync(file, src.replace(from, fixed));
  console.log(`patched ${file} (nodejs/undici#5360)`);
} else if (/finish \(\) \{[^}]*assert\(!this\.paused\)/.test(src)) {
  console.error(`fetch-image: cannot apply the undici#5360 fix to ${file}: its code changed; check the undici version`);
  process.exit(1);
}
// Otherwise this undici already has the upstream fix: nothing to do.
