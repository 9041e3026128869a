import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Hash } from '../hash/index.js';
import type { ContentMethod } from '../store/index.js';
import { hashFlatAndNar, hashPath } from '../nar/index.js';
import { NoSpaceError, contentAddress, isNoSpace, sameContentAddress, treeBytes, type LocalStore, type PathInfo } from '../store/index.js';
import { BuildFailedError, HashMismatchError, InvalidStoredPathError } from './errors.js';
import { SILENT_PROGRESS, type ProgressSink } from './progress.js';
import { declaredContentAddress, declaredHash, outputPath, recipeFileName, recipeTextPath, serializeRecipe, type Json, type Recipe } from './recipe.js';

/**
 * Credentials a builder may use, given by the caller at build time like the impure variables'
 * values: never part of a recipe, so never in the store, an export or a served narinfo.
 */
export interface BuildSecrets {
  /** Curl flags that carry credentials (see lib/fetch splitSecretCurlOpts), applied after the recipe's. */
  curlOpts?: string;
  /** A netrc file (curl --netrc-file, Nix's netrc-file): credentials for the host fetched from. */
  netrcFile?: string;
}

/** What a builder gets: its recipe, a path to create, a private directory, a clean environment. */
export interface BuildContext {
  recipe: Recipe;
  /** Where the builder must create its output (file or directory); does not exist yet. */
  out: string;
  /** A private scratch directory, removed afterwards. */
  tmp: string;
  /** Only the recipe's env plus its impureEnvVars taken from the caller. */
  env: NodeJS.ProcessEnv;
  secrets: BuildSecrets;
  store: LocalStore;
  log: (line: string) => void;
  /** Lines a person should see even in a log (retries): the caller decides where they go. */
  warn: (line: string) => void;
  progress: ProgressSink;
  signal?: AbortSignal;
}

/**
 * What a builder may report besides its output. Hashes it computed while writing save
 * realise() a second read of a large output (builders are in-process code, so they are
 * trusted like Nix trusts its own hashing); `info` is passed back to the caller (e.g. the digest
 * a tag resolved to), and `pinnedArgs` completes a prefetched recipe's arguments.
 */
export interface BuildOutcome {
  flatSha256?: Hash;
  nar?: { hash: Hash; size: number };
  info?: { [key: string]: Json };
  pinnedArgs?: { [key: string]: Json };
  /** Called once the output is valid at `storePath` (e.g. to index reusable parts of it); failures are only logged. */
  registered?: (storePath: string) => void;
}

export type Builder = (ctx: BuildContext) => Promise<BuildOutcome | void>;

/**
 * Something that may already have the output elsewhere (hashed mirrors, binary caches). It
 * writes the output to `out` and returns true, or returns false to let the next one try.
 * Substituted content is checked against the declared hash exactly like a build.
 */
export interface Substituter {
  readonly name: string;
  substitute(storePath: string, recipe: Recipe, out: string, ctx: SubstituteContext): Promise<boolean>;
}

export interface SubstituteContext {
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  progress: ProgressSink;
  store: LocalStore;
}

export interface RealiseOptions {
  builders: Readonly<Record<string, Builder>>;
  substituters?: readonly Substituter[];
  /** The caller's environment, from which impureEnvVars are taken (default process.env). */
  callerEnv?: NodeJS.ProcessEnv;
  /** Credentials for the builder, never stored (see BuildSecrets). */
  secrets?: BuildSecrets;
  keepFailed?: boolean;
  log?: (line: string) => void;
  /** For BuildContext.warn (default: log). */
  warn?: (line: string) => void;
  progress?: ProgressSink;
  signal?: AbortSignal;
}

export interface RealiseResult {
  path: string;
  info: PathInfo;
  /** How the path came to be valid. */
  source: 'store' | 'substituted' | 'built';
  recipePath?: string;
  /** What the builder reported, when it ran. */
  buildInfo?: { [key: string]: Json };
}

export function builderEnv(recipe: Recipe, callerEnv: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...recipe.env };
  for (const name of recipe.impureEnvVars) {
    const v = callerEnv[name];
    if (v !== undefined) env[name] = v;
  }
  return env;
}

interface OutputHashes {
  /** In the recipe's declared mode and algorithm. */
  declared: Hash;
  /** The sha256 NAR hash and size, when this pass could compute them too. */
  nar?: { hash: Hash; size: number };
}

/** Hashes `out` as the recipe declares; flat files get their NAR hash from the same read. */
async function hashOutput(recipe: Recipe, out: string, outcome: BuildOutcome = {}): Promise<OutputHashes> {
  const oh = recipe.outputHash!;
  if (oh.mode === 'flat' && oh.algo === 'sha256' && outcome.flatSha256) {
    return { declared: outcome.flatSha256, nar: outcome.nar ?? (await hashPath(out)) };
  }
  if (oh.mode === 'recursive' && oh.algo === 'sha256' && outcome.nar) return { declared: outcome.nar.hash, nar: outcome.nar };
  if (oh.mode === 'flat') {
    const st = statSync(out, { throwIfNoEntry: false });
    if (!st?.isFile()) throw new Error(`builder of '${recipe.name}' did not produce a regular file, as a flat output must be`);
    const { flat, nar } = await hashFlatAndNar(out, oh.algo);
    return { declared: flat, nar };
  }
  const h = await hashPath(out, oh.algo);
  return oh.algo === 'sha256' ? { declared: h.hash, nar: h } : { declared: h.hash };
}

/**
 * Makes the recipe's output valid in the store: look → substitute → build → verify → register.
 * The output path is known up front, so a valid path returns at once without any I/O beyond
 * the store lookup. Concurrent realisations of one recipe do the work once (per-path lock).
 */
export async function realise(store: LocalStore, recipe: Recipe, opts: RealiseOptions): Promise<RealiseResult> {
  const path = outputPath(recipe, store.storeDir);
  const log = opts.log ?? (() => undefined);
  const progress = opts.progress ?? SILENT_PROGRESS;
  const valid = store.pathInfo(path);
  if (valid) return { path, info: await answeringPin(store, recipe, valid), source: 'store' };
  await realiseInputs(store, recipe, opts);

  const lock = await store.lockPath(path, () => log(`waiting for another process realising ${path}`));
  let again: PathInfo | undefined;
  try {
    again = store.pathInfo(path);
    if (!again) return await realiseLocked(store, recipe, path, opts, log, progress);
  } finally {
    lock.release();
  }
  return { path, info: await answeringPin(store, recipe, again), source: 'store' };
}

/**
 * A valid fixed-output path answers a pin only if its content was hashed against the pin's
 * content address: when registered, or now, once (then recorded). A path registered without a
 * verified one (a bundle, an unsigned CA-less cache entry) whose content differs is refused.
 */
async function answeringPin(store: LocalStore, recipe: Recipe, info: PathInfo): Promise<PathInfo> {
  const ca = declaredContentAddress(recipe);
  if (!ca || (info.caVerified && info.ca && sameContentAddress(info.ca, ca))) return info;
  const recipePath = await store.addText(recipeFileName(recipe), serializeRecipe(recipe));
  const r = await store.proveContentAddress(info.path, ca, { deriver: recipePath });
  if (r.ok) return r.info;
  throw new InvalidStoredPathError(info.path, recipePath, r.want, r.got);
}

/** The work of realise() once the path lock is held and the path is not valid. */
async function realiseLocked(
  store: LocalStore, recipe: Recipe, path: string, opts: RealiseOptions, log: (line: string) => void, progress: ProgressSink,
): Promise<RealiseResult> {
  // The recipe's path names it in messages now; it is stored only with a successful output,
  // so a failure leaves the store exactly as it was.
  const recipePath = recipeTextPath(recipe, store.storeDir);
  const env = builderEnv(recipe, opts.callerEnv ?? process.env);

  for (const sub of opts.substituters ?? []) {
    const tmp = store.makeTempDir('subst');
    const out = join(tmp, 'out');
    try {
      if (!(await sub.substitute(path, recipe, out, { env, log, progress, store }))) continue;
      const info = await verifyAndRegister(store, recipe, path, recipePath, out, false);
      log(`substituted ${path} from ${sub.name}`);
      return { path, info, source: 'substituted', recipePath };
    } catch (e) {
      log(`substituter ${sub.name} failed for ${path}: ${(e as Error).message.split('\n')[0]}`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  const built = await runBuilder(store, recipe, env, opts, recipePath);
  let keep = false;
  try {
    const info = await verifyAndRegister(store, recipe, path, recipePath, built.out, opts.keepFailed ?? false, built.dir, built.outcome);
    announce(built.outcome, path, log);
    return { path, info, source: 'built', recipePath, ...(built.outcome.info ? { buildInfo: built.outcome.info } : {}) };
  } catch (e) {
    keep = e instanceof HashMismatchError && e.keptAt !== undefined;
    if (isNoSpace(e)) throw new NoSpaceError(store.root, path, { neededBytes: treeBytes(built.out) }, e);
    throw e;
  } finally {
    if (!keep) built.discard();
  }
}

/**
 * An input-addressed recipe's inputs: its input recipes are realised first (a fixed output that is
 * valid costs a lookup, no network), then every input must be valid.
 */
export async function realiseInputs(store: LocalStore, recipe: Recipe, opts: RealiseOptions): Promise<void> {
  const inputs = new Set(recipe.inputs ?? []);
  for (const input of recipe.inputRecipes ?? []) {
    const p = outputPath(input, store.storeDir);
    if (!inputs.has(p)) throw new Error(`recipe '${recipe.name}': input recipe '${input.name}' makes ${p}, which is not among its inputs`);
    await realise(store, input, opts);
  }
  for (const p of inputs) {
    if (!store.isValid(p)) throw new Error(`input '${p}' of '${recipe.name}' is not valid in the store (add it, or build what makes it, first)`);
  }
}

export interface BuiltOutput {
  /** The build's private directory; `out` is inside it. */
  dir: string;
  out: string;
  outcome: BuildOutcome;
  discard(): void;
}

/** Runs the recipe's builder in a fresh private directory; on failure removes it unless kept. */
export async function runBuilder(store: LocalStore, recipe: Recipe, env: NodeJS.ProcessEnv, opts: RealiseOptions, recipePath: string): Promise<BuiltOutput> {
  const builder = opts.builders[recipe.builder];
  if (!builder) throw new Error(`no builder '${recipe.builder}' for '${recipe.name}'`);
  const dir = store.makeTempDir('build');
  const discard = () => rmSync(dir, { recursive: true, force: true });
  const out = join(dir, 'out');
  const scratch = join(dir, 'tmp');
  mkdirSync(scratch, { mode: 0o700 });
  const log = opts.log ?? (() => undefined);
  const ctx: BuildContext = {
    recipe, out, tmp: scratch, env, secrets: opts.secrets ?? {}, store, log, warn: opts.warn ?? log, progress: opts.progress ?? SILENT_PROGRESS,
  };
  if (opts.signal) ctx.signal = opts.signal;
  let outcome: BuildOutcome;
  try {
    outcome = (await builder(ctx)) ?? {};
  } catch (e) {
    if (isNoSpace(e)) {
      const written = treeBytes(dir);
      discard();
      throw new NoSpaceError(store.root, recipe.outputHash ? outputPath(recipe, store.storeDir) : `'${recipe.name}'`, { writtenBytes: written }, e);
    }
    const keep = opts.keepFailed ?? false;
    if (!keep) discard();
    throw new BuildFailedError(recipePath, e as Error, keep ? dir : undefined);
  }
  rmSync(scratch, { recursive: true, force: true });
  return { dir, out, outcome, discard };
}

/**
 * For a recipe whose hash is not known yet (`nix-prefetch-url`, `nix-prefetch-docker`): build
 * it, hash the result in `mode`, and register it under the recipe completed with that hash.
 * Returns the completed recipe, which pins the output from now on.
 */
export async function prefetch(
  store: LocalStore, draft: Recipe, mode: ContentMethod, opts: RealiseOptions,
): Promise<RealiseResult & { recipe: Recipe; hash: Hash }> {
  const env = builderEnv(draft, opts.callerEnv ?? process.env);
  const built = await runBuilder(store, draft, env, opts, `${draft.name} (prefetch)`);
  try {
    const o = built.outcome;
    const hash = mode === 'flat' ? (o.flatSha256 ?? (await hashFlatAndNar(built.out)).flat) : (o.nar?.hash ?? (await hashPath(built.out)).hash);
    const recipe: Recipe = { ...draft, args: { ...draft.args, ...o.pinnedArgs }, outputHash: { algo: 'sha256', mode, hash: hash.sri } };
    const buildInfo = o.info ? { buildInfo: o.info } : {};
    const path = outputPath(recipe, store.storeDir);
    const lock = await store.lockPath(path);
    try {
      const existing = store.pathInfo(path);
      if (existing) {
        lock.release(); // answeringPin takes it to record what it found
        return { path, info: await answeringPin(store, recipe, existing), source: 'store', recipe, hash, ...buildInfo };
      }
      const recipePath = recipeTextPath(recipe, store.storeDir);
      const info = await verifyAndRegister(store, recipe, path, recipePath, built.out, false, undefined, o);
      announce(o, path, opts.log ?? (() => undefined));
      return { path, info, source: 'built', recipePath, recipe, hash, ...buildInfo };
    } finally {
      lock.release();
    }
  } finally {
    built.discard();
  }
}

function announce(outcome: BuildOutcome, path: string, log: (line: string) => void): void {
  try {
    outcome.registered?.(path);
  } catch (e) {
    log(`after registering ${path}: ${(e as Error).message}`);
  }
}

async function verifyAndRegister(
  store: LocalStore, recipe: Recipe, path: string, recipePath: string, out: string, keepFailed: boolean, keepDir?: string, outcome?: BuildOutcome,
): Promise<PathInfo> {
  const want = declaredHash(recipe);
  const storeRecipe = () => store.addText(recipeFileName(recipe), serializeRecipe(recipe), recipe.inputs ?? []);
  if (want) {
    const got = await hashOutput(recipe, out, outcome);
    if (!got.declared.equals(want)) {
      const mismatch = new HashMismatchError(recipePath, want, got.declared, keepFailed ? keepDir : undefined);
      if (outcome?.info) mismatch.buildInfo = outcome.info;
      throw mismatch;
    }
    await storeRecipe();
    const known = got.nar ? { narHash: got.nar.hash, narSize: got.nar.size } : {};
    return store.register(path, out, { ca: contentAddress(recipe.outputHash!.mode, want), caVerified: true, deriver: recipePath, ...known });
  }
  await storeRecipe();
  // Input-addressed: references are what the output mentions of its inputs' closure (and itself).
  const candidates = recipe.inputs?.length ? [...store.closure(recipe.inputs), path] : [path];
  return store.register(path, out, { deriver: recipePath, scanFor: candidates });
}
