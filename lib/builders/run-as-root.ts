// The new layer of a build with runAsRoot, as nixpkgs' mkRootLayer makes it: the copyToRoot
// tree (owners uid/gid) over the base's layers, the script run as root on top, then
// extraCommands in the resulting layer directory. Returns the layer directory (tar form: the
// writer keeps its numeric owners and whiteouts, and normalises mtimes).
import { lchownSync, mkdirSync, readdirSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { materialiseRoots, runExtraCommands, type RootSource } from '../build/index.js';
import type { BuildContext } from '../recipe/index.js';
import type { SandboxKind } from '../sandbox/index.js';
import { applyUpper } from './apply-upper.js';
import { DEFAULT_ROOT_TIMEOUT_S, KEEP_FAILED_ENV_VAR, ROOT_TIMEOUT_ENV_VAR, SANDBOX_ENV_VAR, type BuildImageArgs } from './build-image-recipe.js';
import { baseLowerDirs, rootScript, runBuildRootStage, viewOf } from './root-stage.js';

function chownTree(dir: string, uid: number, gid: number): void {
  lchownSync(dir, uid, gid);
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (lstatSync(p).isDirectory()) chownTree(p, uid, gid);
    else lchownSync(p, uid, gid);
  }
}

function sandboxOf(v: string | undefined): 'auto' | SandboxKind {
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'namespace' || v === 'vm') return v;
  throw new Error(`${SANDBOX_ENV_VAR}='${v}': expected auto, namespace or vm`);
}

function timeoutMsOf(v: string | undefined): number {
  if (v === undefined || v === '') return DEFAULT_ROOT_TIMEOUT_S * 1000;
  const s = Number(v);
  if (!Number.isFinite(s) || s <= 0) throw new Error(`${ROOT_TIMEOUT_ENV_VAR}='${v}': expected a positive number of seconds`);
  return Math.round(s * 1000);
}

export async function runAsRootLayer(
  ctx: BuildContext, a: BuildImageArgs, sources: RootSource[], base: { archive: string; storePath: string } | undefined, extraCommands: string,
): Promise<string> {
  const { store } = ctx;
  const runAsRoot = a.runAsRoot ?? '';
  const contents = join(ctx.tmp, 'root');
  if (sources.length) {
    mkdirSync(contents, { mode: 0o755 });
    materialiseRoots(contents, sources, a.keepContentsDirlinks);
    if (a.uid !== 0 || a.gid !== 0) chownTree(contents, a.uid, a.gid);
  }
  const baseDirs = base ? await baseLowerDirs(store, base.archive, base.storePath, ctx.tmp, ctx.log) : [];
  const lowerDirs = [...(sources.length ? [contents] : []), ...baseDirs];
  const script = await rootScript({
    runAsRoot, version: a.shadowSetupVersion === '2016' ? '2016' : 'current', shadow: a.shadow ?? null, lowerDirs, label: a.name,
  });
  const upperDir = join(ctx.tmp, 'upper');
  const result = await runBuildRootStage({
    requested: sandboxOf(ctx.env[SANDBOX_ENV_VAR]), lowerDirs, upperDir, store, script,
    sourceDateEpoch: a.sourceDateEpoch, network: a.network ?? false, timeoutMs: timeoutMsOf(ctx.env[ROOT_TIMEOUT_ENV_VAR]),
    memoryMiB: a.buildVMMemorySize ?? 512, diskSizeMiB: a.diskSize ?? 1024, keepFailed: ctx.env[KEEP_FAILED_ENV_VAR] === '1',
    log: ctx.log, ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  ctx.log(`runAsRoot ran in the ${result.kind} sandbox${result.accel ? ` (${result.accel})` : ''}`);
  let layer = upperDir;
  if (sources.length) {
    const { view, complete } = await viewOf(baseDirs);
    applyUpper(upperDir, contents, (rel) => !complete || view.has(rel));
    layer = contents;
  }
  if (extraCommands) {
    const scratch = join(ctx.tmp, 'scratch');
    mkdirSync(scratch, { mode: 0o700 });
    await runExtraCommands(extraCommands, { root: layer, tmp: scratch, storeDir: store.storeDir, sourceDateEpoch: a.sourceDateEpoch }, {
      log: ctx.log, ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
  }
  return layer;
}
