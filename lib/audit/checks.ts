import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { BUILTIN_BUILDERS, fetchUrlRecipe, outputModeOf, pullRecipe } from '../builders/index.js';
import { request } from '../fetch/index.js';
import { parseHash } from '../hash/index.js';
import { hashFlatAndNar, hashPath } from '../nar/index.js';
import { prefetch, type RealiseOptions } from '../recipe/index.js';
import { RegistryClient, limitConcurrency, type Endpoint } from '../registry/index.js';
import { LocalStore } from '../store/index.js';
import { diffPaths, type DiffReport } from './diff/diff.js';
import type { AuditEntry } from './entries.js';
import { rebuildSpec } from './rebuild.js';
import type { BuildPin } from './lock-file.js';

export const CHECKS = ['drift', 'refetch', 'rebuild', 'store'] as const;
export type CheckName = (typeof CHECKS)[number];

/**
 * - ok: reproduced; n/a: the check does not apply to this entry (said why in the detail);
 * - drifted: a tag, URL or spec now gives something else; mismatch: a re-fetch gave other bytes;
 * - not-deterministic: a rebuild differs; damaged: the stored copy no longer matches its hash;
 * - absent: not in this store (nothing to check, not damage);
 * - error: the check could not be done (unreachable registry…); unsupported: the pin cannot be
 *   audited as written. Neither passes quietly: both fail the audit.
 */
export type Verdict = 'ok' | 'n/a' | 'drifted' | 'mismatch' | 'not-deterministic' | 'damaged' | 'absent' | 'error' | 'unsupported';

export interface CheckResult {
  entry: string;
  origin: string;
  check: CheckName | 'pin';
  verdict: Verdict;
  detail: string;
  /** What was pinned and what was found (digests or hashes), when they differ. */
  pinned?: string;
  found?: string;
  /** The file-level difference, when there are two things to compare. */
  report?: DiffReport;
  /** With keepFailed: the first and second outputs, kept for inspection. */
  kept?: { first?: string; second: string };
}

export interface AuditOptions {
  store: LocalStore;
  checks: ReadonlySet<CheckName>;
  /** Entries audited at once. */
  jobs: number;
  /** The lock file's directory: build specs are relative to it. */
  baseDir: string;
  callerEnv: NodeJS.ProcessEnv;
  /** --tls-verify=false for every image entry (an entry's own tlsVerify: false also counts). */
  tlsVerify: boolean;
  keepFailed: boolean;
  log: (line: string) => void;
  onResult?: (r: CheckResult) => void;
  signal?: AbortSignal;
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]!;

/** A temporary store for re-fetches and rebuilds, shared by the whole run (layers shared between images are fetched once). */
class ScratchStore {
  private made: { dir: string; store: LocalStore } | undefined;
  private keep = false;
  constructor(private readonly storeDir: string) {}

  get(): LocalStore {
    if (!this.made) {
      const dir = mkdtempSync(join(tmpdir(), 'fetch-image-audit-'));
      this.made = { dir, store: new LocalStore({ root: dir, storeDir: this.storeDir }) };
    }
    return this.made.store;
  }

  keepIt(): void {
    this.keep = true;
  }

  /** Removes the scratch store unless something in it is to be kept; returns the kept root. */
  dispose(): string | undefined {
    if (!this.made) return undefined;
    if (this.keep) return this.made.dir;
    rmSync(this.made.dir, { recursive: true, force: true });
    return undefined;
  }
}

interface Ctx extends AuditOptions {
  scratch: ScratchStore;
  /** One ping per registry for the whole run. */
  endpoints: Map<string, Promise<Endpoint>>;
}

function realiseOptions(ctx: Ctx): RealiseOptions {
  return { builders: BUILTIN_BUILDERS, callerEnv: ctx.callerEnv, log: ctx.log, ...(ctx.signal ? { signal: ctx.signal } : {}) };
}

/** Compares a fresh output with the stored copy (when there is one), keeping both on request. */
async function compareOutputs(ctx: Ctx, storePath: string, fresh: string, base: Omit<CheckResult, 'report' | 'kept'>): Promise<CheckResult> {
  const first = ctx.store.isValid(storePath) ? ctx.store.realPath(storePath) : undefined;
  const result: CheckResult = { ...base };
  if (first) {
    try {
      result.report = await diffPaths(first, fresh);
    } catch (e) {
      result.detail += `; no file-level report (${message(e)})`;
    }
  } else {
    result.detail += '; the pinned copy is not in this store, so there is no file-level report';
  }
  if (ctx.keepFailed) {
    ctx.scratch.keepIt();
    result.kept = { ...(first ? { first } : {}), second: fresh };
  }
  return result;
}

async function imageDrift(ctx: Ctx, e: Extract<AuditEntry, { kind: 'image' }>): Promise<CheckResult> {
  const p = e.pin;
  const base = { entry: e.label, origin: e.origin, check: 'drift' as const };
  if (!p.fromTag) return { ...base, verdict: 'n/a', detail: 'pinned by digest: there is no tag to drift' };
  const client = new RegistryClient(`${p.imageName}:${p.fromTag}`, { tlsVerify: ctx.tlsVerify && p.tlsVerify !== false, env: ctx.callerEnv, endpoints: ctx.endpoints });
  // One request when nothing moved: the tag's manifest (verified against its digest) is the pinned
  // image, or the pinned index, which fixes the platform's manifest too. Only a moved tag is
  // resolved through to the platform's manifest, to name what it points at now.
  const top = await client.getManifest(p.fromTag);
  if (top.digest === p.imageDigest && p.indexDigest === undefined) return { ...base, verdict: 'ok', detail: `tag '${p.fromTag}' still resolves to ${p.imageDigest}` };
  if (p.indexDigest !== undefined && top.digest === p.indexDigest) return { ...base, verdict: 'ok', detail: `tag '${p.fromTag}' still resolves to index ${p.indexDigest} (${p.imageDigest} for ${p.os}/${p.arch}${p.variant ? `/${p.variant}` : ''})` };
  const now = await client.resolve({ os: p.os, arch: p.arch, ...(p.variant ? { variant: p.variant } : {}) });
  const same = now.manifestDigest === p.imageDigest && (p.indexDigest === undefined || now.indexDigest === p.indexDigest);
  if (same) return { ...base, verdict: 'ok', detail: `tag '${p.fromTag}' still resolves to ${p.imageDigest}` };
  const indexNote = p.indexDigest && now.indexDigest !== p.indexDigest ? ` (index ${p.indexDigest} → ${now.indexDigest ?? 'none'})` : '';
  return {
    ...base, verdict: 'drifted', pinned: p.imageDigest, found: now.manifestDigest,
    detail: `tag '${p.fromTag}' now resolves to ${now.manifestDigest}, pinned ${p.imageDigest}${indexNote}`,
  };
}

async function imageRefetch(ctx: Ctx, e: Extract<AuditEntry, { kind: 'image' }>): Promise<CheckResult> {
  const p = e.pin;
  const base = { entry: e.label, origin: e.origin, check: 'refetch' as const };
  const recipe = pullRecipe({
    reference: `${p.imageName}@${p.imageDigest}`, finalImageName: p.finalImageName, finalImageTag: p.finalImageTag,
    os: p.os, arch: p.arch, ...(p.variant ? { variant: p.variant } : {}), ...(p.name ? { name: p.name } : {}),
    tlsVerify: ctx.tlsVerify && p.tlsVerify !== false,
  });
  const scratch = ctx.scratch.get();
  const r = await prefetch(scratch, recipe, 'flat', realiseOptions(ctx));
  if (r.hash.sri === p.hash && r.path === p.storePath) return { ...base, verdict: 'ok', detail: `${p.imageDigest} re-fetched: ${p.hash}` };
  const detail = r.hash.sri !== p.hash
    ? `${p.imageName}@${p.imageDigest} now gives ${r.hash.sri}, pinned ${p.hash}`
    : `same bytes, but the store path is ${r.path}, pinned ${p.storePath}`;
  return compareOutputs(ctx, p.storePath, scratch.realPath(r.path), { ...base, verdict: 'mismatch', detail, pinned: p.hash, found: r.hash.sri });
}

async function urlDrift(ctx: Ctx, e: Extract<AuditEntry, { kind: 'url' }>): Promise<CheckResult> {
  const p = e.pin;
  const base = { entry: e.label, origin: e.origin, check: 'drift' as const };
  if (p.etag === undefined && p.lastModified === undefined && p.size === undefined) {
    return { ...base, verdict: 'n/a', detail: 'no ETag, Last-Modified or size was recorded when the pin was made' };
  }
  const res = await request(p.url, { method: 'HEAD' }, { env: ctx.callerEnv, ...(ctx.signal ? { signal: ctx.signal } : {}) });
  res.body.resume();
  if (res.status >= 400) return { ...base, verdict: 'error', detail: `HEAD ${p.url}: HTTP ${res.status} ${res.statusText}` };
  const changes: string[] = [];
  const size = res.headers['content-length'] === undefined ? undefined : Number(res.headers['content-length']);
  if (p.etag !== undefined && res.headers.etag !== p.etag) changes.push(`ETag ${p.etag} → ${res.headers.etag ?? '(none)'}`);
  if (p.lastModified !== undefined && res.headers['last-modified'] !== p.lastModified) changes.push(`Last-Modified ${p.lastModified} → ${res.headers['last-modified'] ?? '(none)'}`);
  if (p.size !== undefined && size !== p.size) changes.push(`size ${p.size} → ${size ?? '(unknown)'}`);
  if (changes.length === 0) return { ...base, verdict: 'ok', detail: 'the server describes the same file (a hint, not proof: refetch compares the bytes)' };
  return { ...base, verdict: 'drifted', detail: `${changes.join(', ')} (a hint that the file changed: refetch compares the bytes)` };
}

async function urlRefetch(ctx: Ctx, e: Extract<AuditEntry, { kind: 'url' }>): Promise<CheckResult> {
  const p = e.pin;
  const base = { entry: e.label, origin: e.origin, check: 'refetch' as const };
  const spec = { url: p.url, unpack: p.unpack, executable: p.executable ?? false, name: p.name };
  const scratch = ctx.scratch.get();
  const r = await prefetch(scratch, fetchUrlRecipe(spec), outputModeOf(spec), realiseOptions(ctx));
  if (r.hash.sri === p.hash) return { ...base, verdict: 'ok', detail: `re-fetched: ${p.hash}` };
  return compareOutputs(ctx, p.storePath, scratch.realPath(r.path), {
    ...base, verdict: 'mismatch', pinned: p.hash, found: r.hash.sri, detail: `${p.url} now gives ${r.hash.sri}, pinned ${p.hash}`,
  });
}

/** The stored copy against what the pin says its content is. */
async function storeCheck(ctx: Ctx, entry: Exclude<AuditEntry, { kind: 'unsupported' }>): Promise<CheckResult> {
  const base = { entry: entry.label, origin: entry.origin, check: 'store' as const };
  const storePath = entry.pin.storePath;
  const info = ctx.store.pathInfo(storePath);
  if (!info) return { ...base, verdict: 'absent', detail: `${storePath} is not in this store` };
  const real = ctx.store.realPath(storePath);
  let st;
  try {
    st = statSync(real);
  } catch {
    return { ...base, verdict: 'damaged', detail: `${storePath} is registered but its content is missing (store verify --repair)` };
  }
  const flatPin = entry.kind === 'image' || (entry.kind === 'url' && !entry.pin.unpack && !entry.pin.executable);
  const hashes = st.isFile() ? await hashFlatAndNar(real) : { nar: await hashPath(real), flat: undefined };
  const problems: string[] = [];
  if (!hashes.nar.hash.equals(parseHash(info.narHash))) problems.push(`its NAR hash is ${hashes.nar.hash.sri}, recorded ${parseHash(info.narHash).sri}`);
  if (entry.kind === 'build' && hashes.nar.hash.sri !== parseHash(entry.pin.narHash).sri) problems.push(`its NAR hash is ${hashes.nar.hash.sri}, locked ${entry.pin.narHash}`);
  if (entry.kind !== 'build') {
    const got = flatPin ? hashes.flat : hashes.nar.hash;
    if (!got || got.sri !== entry.pin.hash) problems.push(`its ${flatPin ? 'flat' : 'NAR'} hash is ${got?.sri ?? '(not a file)'}, pinned ${entry.pin.hash}`);
  }
  if (problems.length === 0) return { ...base, verdict: 'ok', detail: `${storePath} is intact` };
  return { ...base, verdict: 'damaged', detail: `${storePath}: ${problems.join('; ')} (store verify --repair)` };
}

function specPathOf(ctx: Ctx, pin: BuildPin): string {
  return isAbsolute(pin.spec) ? pin.spec : join(ctx.baseDir, pin.spec);
}

async function buildDrift(ctx: Ctx, e: Extract<AuditEntry, { kind: 'build' }>): Promise<CheckResult> {
  const base = { entry: e.label, origin: e.origin, check: 'drift' as const };
  const file = specPathOf(ctx, e.pin);
  const now = createHash('sha256').update(readFileSync(file)).digest('hex');
  if (now === e.pin.specSha256) return { ...base, verdict: 'ok', detail: 'the spec is unchanged since it was locked' };
  return { ...base, verdict: 'drifted', pinned: e.pin.specSha256, found: now, detail: `${e.pin.spec} changed since it was locked (sha256 ${e.pin.specSha256.slice(0, 12)}… → ${now.slice(0, 12)}…)` };
}

async function buildRebuild(ctx: Ctx, e: Extract<AuditEntry, { kind: 'build' }>): Promise<CheckResult> {
  const base = { entry: e.label, origin: e.origin, check: 'rebuild' as const };
  const fresh = await rebuildSpec(ctx.store, () => ctx.scratch.get(), specPathOf(ctx, e.pin), { callerEnv: ctx.callerEnv, log: ctx.log, ...(ctx.signal ? { signal: ctx.signal } : {}) });
  let keep = false;
  try {
    const nar = statSync(fresh.realPath).isFile() ? (await hashFlatAndNar(fresh.realPath)).nar.hash : (await hashPath(fresh.realPath)).hash;
    if (fresh.path === e.pin.storePath && nar.sri === parseHash(e.pin.narHash).sri) return { ...base, verdict: 'ok', detail: `rebuilt bit for bit: ${e.pin.narHash}` };
    const detail = fresh.path !== e.pin.storePath
      ? `the recipe now gives ${fresh.path}, locked ${e.pin.storePath} (the inputs changed)`
      : `output '${e.pin.storePath}' differs: NAR hash ${nar.sri}, locked ${e.pin.narHash}`;
    const verdict: Verdict = fresh.path !== e.pin.storePath ? 'drifted' : 'not-deterministic';
    const r = await compareOutputs(ctx, e.pin.storePath, fresh.realPath, { ...base, verdict, detail, pinned: e.pin.narHash, found: nar.sri });
    keep = ctx.keepFailed;
    const kept = keep ? fresh.finish(true) : undefined;
    if (kept && r.kept) r.kept.second = kept;
    return r;
  } finally {
    if (!keep) fresh.finish(false);
  }
}

type Runner = (ctx: Ctx, e: never) => Promise<CheckResult>;
const RUNNERS: Record<'image' | 'url' | 'build', Partial<Record<CheckName, Runner>>> = {
  image: { drift: imageDrift, refetch: imageRefetch, store: storeCheck },
  url: { drift: urlDrift, refetch: urlRefetch, store: storeCheck },
  build: { drift: buildDrift, rebuild: buildRebuild, store: storeCheck },
};
const NOT_APPLICABLE: Record<'image' | 'url' | 'build', Partial<Record<CheckName, string>>> = {
  image: { rebuild: 'a pulled image is fetched, not built' },
  url: { rebuild: 'a download is fetched, not built' },
  build: { refetch: 'a build is rebuilt, not fetched' },
};

async function auditEntry(ctx: Ctx, e: AuditEntry): Promise<CheckResult[]> {
  if (e.kind === 'unsupported') return [{ entry: e.label, origin: e.origin, check: 'pin', verdict: 'unsupported', detail: e.reason }];
  const out: CheckResult[] = [];
  for (const check of CHECKS) {
    if (!ctx.checks.has(check)) continue;
    const run = RUNNERS[e.kind][check];
    let r: CheckResult;
    if (!run) r = { entry: e.label, origin: e.origin, check, verdict: 'n/a', detail: NOT_APPLICABLE[e.kind][check] ?? 'does not apply' };
    else {
      try {
        r = await (run as (c: Ctx, x: AuditEntry) => Promise<CheckResult>)(ctx, e);
      } catch (err) {
        ctx.signal?.throwIfAborted();
        r = { entry: e.label, origin: e.origin, check, verdict: 'error', detail: message(err) };
      }
    }
    if (e.notes.length && check === 'drift') r.detail += ` (${e.notes.join('; ')})`;
    ctx.onResult?.(r);
    out.push(r);
  }
  return out;
}

/** Runs the selected checks on every entry, `jobs` entries at a time; results in entry order. */
export async function runAudit(entries: readonly AuditEntry[], opts: AuditOptions): Promise<{ results: CheckResult[]; scratchKept?: string }> {
  const scratch = new ScratchStore(opts.store.storeDir);
  const ctx: Ctx = { ...opts, scratch, endpoints: new Map() };
  const limit = limitConcurrency(Math.max(1, opts.jobs));
  let results: CheckResult[];
  try {
    results = (await Promise.all(entries.map((e) => limit(() => auditEntry(ctx, e))))).flat();
  } catch (e) {
    scratch.dispose();
    throw e;
  }
  const kept = scratch.dispose();
  return { results, ...(kept ? { scratchKept: kept } : {}) };
}

/**
 * The audit's exit code: 0 all reproduced; 1 drift, a re-fetch mismatch, or a pin that could
 * not be audited (error, unsupported); 104 a rebuild differs (Nix's "not deterministic"); 3
 * store damage. Several kinds at once: 100 + 1 (drift/refetch/error) + 4 (rebuild) + 8 (store),
 * e.g. 105 = drift and a rebuild difference, 109 = drift and damage, 113 = all three.
 */
export function auditExitCode(results: readonly CheckResult[]): number {
  const drift = results.some((r) => ['drifted', 'mismatch', 'error', 'unsupported'].includes(r.verdict));
  const rebuild = results.some((r) => r.verdict === 'not-deterministic');
  const store = results.some((r) => r.verdict === 'damaged');
  const kinds = [drift, rebuild, store].filter(Boolean).length;
  if (kinds === 0) return 0;
  if (kinds === 1) return drift ? 1 : rebuild ? 104 : 3;
  return 100 + (drift ? 1 : 0) + (rebuild ? 4 : 0) + (store ? 8 : 0);
}

