// The runAsRoot stage of a build: the base's layers as cached lower dirs, the copyToRoot tree
// above them, the script with `${shadowSetup}` expanded, run in the chosen sandbox; the upper
// dir (tar form) comes back as the new layer's changes.
import { createReadStream, mkdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import { openBaseArchive, shadowSetup, type ShadowSetupVersion } from '../build/index.js';
import {
  chooseSandbox, prepareLowerDir, readLowerForm, runRootStage,
  type RootStageResult, type SandboxKind,
} from '../sandbox/index.js';
import { ContentIndex, LayerTreeCache, type LocalStore } from '../store/index.js';
import { ImageView } from './image-view.js';
import { posixTests } from './shadow-text.js';


/** The cleared environment of the script (SPEC.md §9), as nixpkgs' VM gives it. */
export function rootStageEnv(sourceDateEpoch: number): Record<string, string> {
  return { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', SOURCE_DATE_EPOCH: String(sourceDateEpoch) };
}

/**
 * The base's layers as overlay lower dirs, top first, from the store-side cache (one tree per
 * diff_id, unpacked on first use). An uncompressed base's layers are recorded in the content
 * index, so `store gc` keeps their trees while the base is valid.
 */
export async function baseLowerDirs(store: LocalStore, archive: string, storePath: string, tmp: string, log: (line: string) => void): Promise<string[]> {
  const base = await openBaseArchive(archive, tmp);
  try {
    const cache = new LayerTreeCache(store);
    const index = new ContentIndex(store);
    const dirs: string[] = [];
    for (const layer of base.layers) {
      const { member, diffId } = layer;
      const { dir, made } = await cache.ensure(diffId, (d) => prepareLowerDir(
        member.size === 0 ? Readable.from([]) : createReadStream(base.path, { start: member.dataOffset, end: member.dataOffset + member.size - 1, highWaterMark: 1 << 20 }),
        d,
      ));
      if (made) log(`unpacked base layer ${diffId} for the root stage`);
      if (base.path === archive && !index.lookup(diffId)) index.record(diffId, { path: storePath, offset: member.dataOffset, size: member.size });
      dirs.push(dir);
    }
    return dirs.reverse();
  } finally {
    await base.close();
  }
}

/**
 * The trees the script's root is made of, top first, for looking things up before the run.
 * `complete` is false when some lower is in tar form (prepared without root): it cannot be read.
 */
export async function viewOf(lowerDirs: readonly string[]): Promise<{ view: ImageView; complete: boolean }> {
  const trees: string[] = [];
  let complete = true;
  for (const d of lowerDirs) {
    const l = await readLowerForm(d);
    if (l.form === 'tar') complete = false;
    else trees.push(l.tree);
  }
  return { view: new ImageView(trees), complete };
}

const SHADOW_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export interface RootScriptInput {
  runAsRoot: string;
  version: ShadowSetupVersion;
  /** The spec's `shadow` store path, or null. */
  shadow: string | null;
  lowerDirs: readonly string[];
  /** For errors. */
  label: string;
}

/**
 * `#!<shell>\nset -e\n<runAsRoot>`, as nixpkgs' shellScript writes it, with `${shadowSetup}`
 * expanded. The shell is the image's own: /bin/bash when it has one, else /bin/sh (e.g. busybox
 * from copyToRoot). shadowSetup's PATH prefix: the image's groupadd/useradd directory when it
 * has them, else the spec's `shadow` store path's bin.
 */
export async function rootScript(i: RootScriptInput): Promise<string> {
  const { view, complete } = await viewOf(i.lowerDirs);
  // Tar-form lowers cannot be looked into before the run: then /bin/sh is assumed.
  const shell = view.isFile('/bin/bash') ? '/bin/bash' : view.isFile('/bin/sh') || !complete ? '/bin/sh' : undefined;
  if (!shell) {
    throw new Error(`${i.label}: runAsRoot needs a shell in the image: neither /bin/sh nor /bin/bash is in the base or copyToRoot (add one, e.g. busybox-static with a /bin/sh link, to copyToRoot)`);
  }
  const own = SHADOW_DIRS.find((d) => view.isFile(`${d}/groupadd`) && view.isFile(`${d}/useradd`));
  const shadowBin = own ?? (i.shadow ? `${i.shadow}/bin` : null);
  let setup = shadowSetup(i.version, shadowBin, shell);
  if (shell !== '/bin/bash') setup = posixTests(setup);
  return `#!${shell}\nset -e\n${i.runAsRoot.replaceAll('${shadowSetup}', setup)}`;
}

export interface RunStageInput {
  requested: 'auto' | SandboxKind;
  lowerDirs: string[];
  upperDir: string;
  store: LocalStore;
  script: string;
  sourceDateEpoch: number;
  network: boolean;
  timeoutMs: number;
  memoryMiB: number;
  diskSizeMiB: number;
  keepFailed: boolean;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** Runs the stage; a failing script is an error with its exit code and last lines of output. */
export async function runBuildRootStage(i: RunStageInput): Promise<RootStageResult> {
  const kind = await chooseSandbox(i.requested);
  mkdirSync(i.upperDir, { mode: 0o755 });
  const result = await runRootStage(kind, {
    lowerDirs: i.lowerDirs, upperDir: i.upperDir,
    storeDir: { real: i.store.physicalStoreDir, logical: i.store.storeDir },
    script: i.script, env: rootStageEnv(i.sourceDateEpoch), network: i.network, timeoutMs: i.timeoutMs,
    memoryMiB: i.memoryMiB, diskSizeMiB: i.diskSizeMiB, onNote: i.log,
    ...(i.signal ? { signal: i.signal } : {}),
  });
  if (result.exitCode !== 0) throw new Error(failureMessage(result, i));
  return result;
}

function failureMessage(r: RootStageResult, i: RunStageInput): string {
  const store = i.store.storeDir;
  const wroteStore = r.outputTail.some((l) => l.includes(store) && /read-only file system/i.test(l));
  const head = wroteStore
    ? `runAsRoot failed (exit code ${r.exitCode}, ${r.kind} sandbox): it tried to write into ${store}, which is read-only in the root stage (store paths never change: write elsewhere, e.g. /opt or /usr/local)`
    : `runAsRoot failed with exit code ${r.exitCode} (${r.kind} sandbox)`;
  const tail = r.outputTail.length ? `; its last ${r.outputTail.length} lines of output:\n${r.outputTail.map((l) => `  ${l}`).join('\n')}` : '; it printed nothing';
  const kept = i.keepFailed ? `\nthe upper dir (the script's changes) is kept at '${i.upperDir}'` : '\n(--keep-failed keeps the upper dir with the script\'s changes)';
  return head + tail + kept;
}
