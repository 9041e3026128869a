// `fetch-image build --check SPEC`: build a valid output again and compare bit for bit, as
// `nix-build --check` (exit 104 "may not be deterministic", the second output kept on request).
import { renderDiff, rebuildSpec } from '../lib/audit/index.js';
import { diffPaths } from '../lib/audit/index.js';
import { hashFlatAndNar, hashPath } from '../lib/nar/index.js';
import { parseHash } from '../lib/hash/index.js';
import type { LocalStore } from '../lib/store/index.js';
import { statSync } from 'node:fs';
import { emit, note, type GlobalArgs } from './context.js';
import { EXIT, UserError } from './errors.js';

export async function checkBuild(store: LocalStore, a: GlobalArgs & { spec: string; keepFailed?: boolean }, outPath: string, recipePath: string): Promise<void> {
  const info = store.pathInfo(outPath);
  if (!info) throw new UserError(`${outPath} is not valid, so checking is not possible: build ${a.spec} first`);
  const fresh = await rebuildSpec(store, () => { throw new UserError(`${outPath} is not valid: build ${a.spec} first`); }, a.spec, { log: (l) => note(a, l) });
  const nar = statSync(fresh.realPath).isFile() ? (await hashFlatAndNar(fresh.realPath)).nar.hash : (await hashPath(fresh.realPath)).hash;
  const registered = parseHash(info.narHash);
  if (nar.equals(registered)) {
    fresh.finish(false);
    emit(a, { storePath: outPath, deterministic: true, narHash: nar.sri }, () => `${outPath}: rebuilt bit for bit (${nar.sri})`);
    return;
  }
  const report = await diffPaths(store.realPath(outPath), fresh.realPath);
  const kept = fresh.finish(a.keepFailed ?? false);
  const message = `derivation '${recipePath}' may not be deterministic: output '${outPath}' differs`;
  if (a.json) process.stdout.write(`${JSON.stringify({ storePath: outPath, deterministic: false, narHash: registered.sri, rebuiltNarHash: nar.sri, report, ...(kept ? { kept } : {}) }, null, 2)}\n`);
  else {
    process.stderr.write(`error: ${message}\n`);
    process.stdout.write(`${renderDiff(report)}\n`);
    if (kept) process.stdout.write(`first:  ${store.realPath(outPath)}\nsecond: ${kept}\n`);
  }
  process.exitCode = EXIT.notDeterministic;
}
