// What `fetch-image build` prints and the roots it makes: shared by the full command and the
// start-up fast path for a spec whose output is valid already.
import { lstatSync, symlinkSync, unlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { readBuildInfo } from '../lib/builders/build-info.js';
import type { BuildPlan } from '../lib/builders/build-plan.js';
import type { LocalStore } from '../lib/store/index.js';
import { emit, type GlobalArgs } from './context.js';
import { EXIT, UserError } from './errors.js';

export interface BuildReportArgs extends GlobalArgs {
  outLink?: string;
  addRoot?: string;
}

/** --out-link: a symlink in the working directory plus an indirect root; --add-root: a named root. */
function addRoots(store: LocalStore, a: BuildReportArgs, storePath: string): string | undefined {
  if (a.addRoot) return store.addRoot(storePath, a.addRoot, { force: true }).link; // as nix-build -o: repointed
  if (!a.outLink) return undefined;
  const link = resolve(a.outLink);
  const st = lstatSync(link, { throwIfNoEntry: false });
  if (st && !st.isSymbolicLink()) throw new UserError(`--out-link ${a.outLink}: exists and is not a symlink; choose another name`, EXIT.usage);
  if (st) unlinkSync(link);
  symlinkSync(store.realPath(storePath), link);
  store.addIndirectRoot(link);
  return link;
}

/** The store path, or with --json what the build reported (recorded, so a run with no work prints the same). */
export function reportBuild(store: LocalStore, a: BuildReportArgs, plan: BuildPlan, source: string): void {
  const link = addRoots(store, a, plan.outPath);
  const info = readBuildInfo(store, plan.outPath);
  emit(a, {
    storePath: plan.outPath, path: store.realPath(plan.outPath),
    imageName: info?.imageName ?? plan.spec.name, imageTag: info?.imageTag ?? plan.spec.tag,
    layerDiffId: info?.layerDiffId ?? null, configDigest: info?.configDigest ?? null,
    added: info?.added ?? null, skipped: info?.skipped ?? null, closureSize: info?.closureSize ?? null,
    source, ...(link ? { root: link } : {}),
  }, () => plan.outPath);
}
