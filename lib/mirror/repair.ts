// `store verify --repair`: makes each broken path valid again the ways Nix would — from a
// binary cache (substituters), or by realising the recipe recorded as its deriver — and, only
// when asked, deletes what cannot be repaired (and what then refers to a deleted path).
import { outputPath, realise, storedRecipe, type Builder, type Substituter } from '../recipe/index.js';
import type { LocalStore, PathInfo, VerifyProblem } from '../store/index.js';
import type { MirrorConfig } from './config.js';
import { binaryCacheSubstituter, substituteFromCaches } from './substituter.js';

export interface RepairOptions {
  caches: Pick<MirrorConfig, 'substituters' | 'trustedPublicKeys' | 'requireSigs'>;
  /** The builders a deriver may name (the builtin ones). */
  builders: Readonly<Record<string, Builder>>;
  /** Substituters a rebuild asks after the binary caches (e.g. hashed mirrors). */
  substituters?: readonly Substituter[];
  /** Delete what cannot be repaired (else it is left as it is and reported). */
  deleteInvalid?: boolean;
  /** The environment realised recipes take their impure variables from. */
  callerEnv?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

export interface RepairOutcome {
  path: string;
  action: 'repaired' | 'deleted' | 'unrepaired';
  /** How it was repaired, or why it could not be. */
  detail: string;
}

interface Attempt {
  ok: boolean;
  detail: string;
}

class Repairer {
  private readonly log: (line: string) => void;
  private readonly outcomes = new Map<string, RepairOutcome>();

  constructor(private readonly store: LocalStore, private readonly opts: RepairOptions) {
    this.log = opts.log ?? (() => undefined);
  }

  /** From the caches: the path with its narinfo's references, signatures and CA. */
  private async fromCaches(path: string): Promise<Attempt> {
    const { substituters, trustedPublicKeys, requireSigs } = this.opts.caches;
    if (!substituters.length) return { ok: false, detail: 'no substituters configured' };
    const info = await substituteFromCaches(this.store, path, substituters, trustedPublicKeys, { checkSigs: requireSigs, log: this.log });
    return info ? { ok: true, detail: 'substituted from a binary cache' } : { ok: false, detail: `not in any substituter (${substituters.join(', ')})` };
  }

  /** By realising the recipe recorded as deriver again (substituters first, then its builder). */
  private async fromDeriver(path: string, deriver: string | undefined): Promise<Attempt> {
    if (!deriver) return { ok: false, detail: 'no deriver recorded' };
    if (!this.store.isValid(deriver) && !(await this.fromCaches(deriver)).ok) return { ok: false, detail: `its deriver ${deriver} is not in the store` };
    const recipe = storedRecipe(this.store, deriver);
    if (!recipe) return { ok: false, detail: `its deriver ${deriver} is not a recipe` };
    if (outputPath(recipe, this.store.storeDir) !== path) return { ok: false, detail: `its deriver ${deriver} produces another path` };
    try {
      await realise(this.store, recipe, {
        builders: this.opts.builders,
        substituters: [...(this.opts.caches.substituters.length ? [binaryCacheSubstituter(this.opts.caches)] : []), ...(this.opts.substituters ?? [])],
        callerEnv: this.opts.callerEnv ?? process.env,
        log: this.log,
      });
      return { ok: true, detail: `rebuilt from its deriver ${deriver}` };
    } catch (e) {
      return { ok: false, detail: `rebuilding from ${deriver} failed: ${(e as Error).message.split('\n')[0]}` };
    }
  }

  /** Moves the broken path aside, tries every source, and puts it back if none worked. */
  private async replace(path: string, deriver: string | undefined): Promise<Attempt> {
    const aside = await this.store.quarantine(path);
    const tried: string[] = [];
    for (const attempt of [() => this.fromCaches(path), () => this.fromDeriver(path, deriver ?? aside.info?.deriver)]) {
      const r = await attempt();
      if (r.ok) {
        await aside.discard();
        return r;
      }
      tried.push(r.detail);
    }
    aside.restore();
    return { ok: false, detail: tried.join('; ') };
  }

  private async orphan(path: string): Promise<Attempt> {
    if (await this.store.adoptOrphan(path)) return { ok: true, detail: 'registered again: its name and content prove its content address' };
    return this.replace(path, undefined);
  }

  /** A reference that is not valid: make the referenced path valid (it has no record to go by). */
  private async reference(ref: string): Promise<Attempt> {
    const done = this.outcomes.get(ref);
    if (done) return { ok: done.action === 'repaired', detail: done.detail };
    if (this.store.isValid(ref)) return { ok: true, detail: 'valid again' };
    const r = this.store.hasContent(ref) ? await this.orphan(ref) : await this.replace(ref, undefined);
    this.outcomes.set(ref, { path: ref, action: r.ok ? 'repaired' : 'unrepaired', detail: r.detail });
    return r;
  }

  private async one(p: VerifyProblem): Promise<Attempt> {
    switch (p.kind) {
      case 'orphan':
        return this.orphan(p.path);
      case 'invalid-reference': {
        const r = await this.reference(p.reference!);
        return r.ok ? { ok: true, detail: `its reference ${p.reference} was repaired (${r.detail})` } : { ok: false, detail: `its reference ${p.reference} cannot be repaired: ${r.detail}` };
      }
      case 'unreadable-record':
        if (p.path.endsWith('-?')) return { ok: false, detail: 'neither its content nor its path is known' };
        return this.replace(p.path, undefined);
      default:
        return this.replace(p.path, undefined);
    }
  }

  async run(problems: readonly VerifyProblem[]): Promise<RepairOutcome[]> {
    // Paths themselves first, references after: a referenced path may be repaired on its own line.
    const ordered = [...problems.filter((p) => p.kind !== 'invalid-reference'), ...problems.filter((p) => p.kind === 'invalid-reference')];
    const results: RepairOutcome[] = [];
    for (const p of ordered) {
      const prior = p.kind !== 'invalid-reference' && results.some((r) => r.path === p.path);
      if (prior) continue; // a second problem of a path already dealt with
      const r = await this.one(p);
      if (r.ok) {
        results.push({ path: p.path, action: 'repaired', detail: r.detail });
        if (p.kind !== 'invalid-reference') this.outcomes.set(p.path, results.at(-1)!);
      } else if (this.opts.deleteInvalid) {
        await this.delete(p, r.detail, results);
      } else {
        results.push({ path: p.path, action: 'unrepaired', detail: r.detail });
      }
    }
    return results;
  }

  /** Deletes an unrepairable path, then every valid path that referred to it (they are invalid now). */
  private async delete(p: VerifyProblem, why: string, results: RepairOutcome[]): Promise<void> {
    if (p.kind === 'unreadable-record' && p.record && p.path.endsWith('-?')) {
      this.store.removeRecordFile(p.record);
      results.push({ path: p.path, action: 'deleted', detail: `removed the record ${p.record} (${why})` });
      return;
    }
    const doomed = [p.path];
    while (doomed.length) {
      const path = doomed.shift()!;
      if (results.some((r) => r.path === path && r.action === 'deleted')) continue;
      await this.store.deleteInvalid(path);
      results.push({ path, action: 'deleted', detail: path === p.path ? `cannot be repaired: ${why}` : 'it referred to a deleted path' });
      const referrers = this.store.list().filter((i: PathInfo) => i.path !== path && i.references.includes(path));
      doomed.push(...referrers.map((i) => i.path));
    }
  }
}

/** Repairs what `store.verify()` reported; returns one outcome per path touched. */
export async function repairStore(store: LocalStore, problems: readonly VerifyProblem[], opts: RepairOptions): Promise<RepairOutcome[]> {
  return new Repairer(store, opts).run(problems);
}
