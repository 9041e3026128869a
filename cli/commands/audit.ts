import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import {
  CHECKS, DEFAULT_LOCK_FILE, auditExitCode, entriesFromLock, entriesFromNixPins, parseLock, readNixPins, readPrefetchDockerJson,
  renderAuditMarkdown, renderAuditTable, runAudit, type AuditEntry, type CheckName, type CheckResult,
} from '../../lib/audit/index.js';
import { hostArchitecture } from '../../lib/registry/index.js';
import { note, openStore, type GlobalArgs } from '../context.js';
import { EXIT, UserError } from '../errors.js';

interface AuditArgs extends GlobalArgs {
  lock?: string;
  nix?: string[];
  prefetchJson?: string[];
  checks?: string;
  markdown?: boolean;
  jobs: number;
  keepFailed?: boolean;
  tlsVerify: boolean;
}

/** `--checks drift,store`: every name known, none empty; an empty list never means "no checks". */
export function parseChecks(text: string | undefined): Set<CheckName> {
  if (text === undefined) return new Set(CHECKS);
  const names = text.split(',').map((s) => s.trim());
  if (names.every((n) => n === '')) throw new UserError(`empty --checks: name at least one of ${CHECKS.join(', ')} (or leave the option out for all)`, EXIT.usage);
  const out = new Set<CheckName>();
  for (const n of names) {
    if (n === '') continue;
    if (!(CHECKS as readonly string[]).includes(n)) throw new UserError(`unknown check '${n}' in --checks: expected ${CHECKS.join(', ')}`, EXIT.usage);
    out.add(n as CheckName);
  }
  return out;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read '${file}': ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message}`, EXIT.usage);
  }
}

/** What to audit: the lock file, nixpkgs files and nix-prefetch-docker JSON, in that order; a file that cannot be read or parsed is a usage error. */
function collectEntries(a: AuditArgs, storeDir: string): { entries: AuditEntry[]; baseDir: string } {
  const entries: AuditEntry[] = [];
  const given = (a.nix?.length ?? 0) + (a.prefetchJson?.length ?? 0) > 0;
  const lockFile = a.lock ?? (given ? undefined : DEFAULT_LOCK_FILE);
  let baseDir = process.cwd();
  if (lockFile !== undefined) {
    if (a.lock === undefined && !existsSync(lockFile)) {
      throw new UserError(`no ${DEFAULT_LOCK_FILE} here: give a lock file, or --nix FILE.nix (see fetch-image lock --help)`, EXIT.usage);
    }
    const abs = resolve(lockFile);
    baseDir = dirname(abs);
    try {
      entries.push(...entriesFromLock(parseLock(readText(abs), lockFile), lockFile));
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError((e as Error).message, EXIT.usage);
    }
  }
  const arch = hostArchitecture();
  for (const file of a.nix ?? []) {
    try {
      entries.push(...entriesFromNixPins(readNixPins(readText(file), file), arch, storeDir));
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError((e as Error).message, EXIT.usage);
    }
  }
  for (const file of a.prefetchJson ?? []) {
    try {
      const pins = readPrefetchDockerJson(readText(file), file).map((p, i) => ({
        file, line: i + 1, unsupported: [],
        attrs: Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)),
      }));
      entries.push(...entriesFromNixPins(pins, arch, storeDir));
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError((e as Error).message, EXIT.usage);
    }
  }
  if (entries.length === 0) throw new UserError('nothing to audit: the given files hold no pins');
  return { entries, baseDir };
}

function progressLine(a: AuditArgs): ((r: CheckResult) => void) | undefined {
  if (a.quiet || !process.stderr.isTTY) return undefined;
  let n = 0;
  return (r) => {
    n++;
    process.stderr.write(`\r\x1b[K[${n}] ${r.entry}: ${r.check} ${r.verdict}`);
  };
}

export const auditCommand: CommandModule<GlobalArgs, AuditArgs> = {
  command: 'audit [lock]',
  describe: 'Is this still exactly what we shipped? Check pins for drift, re-fetch, rebuild and the stored copies',
  builder: (y) =>
    y
      .positional('lock', { type: 'string', describe: `lock file (default ./${DEFAULT_LOCK_FILE} unless --nix or --prefetch-json is given)` })
      .option('nix', { type: 'string', array: true, nargs: 1, requiresArg: true, describe: 'a .nix file whose pullImage { … } sets are audited (repeatable)' })
      .option('prefetch-json', { type: 'string', array: true, nargs: 1, requiresArg: true, describe: 'nix-prefetch-docker --json output to audit (repeatable)' })
      .option('checks', { type: 'string', requiresArg: true, describe: `comma-separated: ${CHECKS.join(',')} (default: all)` })
      .option('markdown', { type: 'boolean', describe: 'a Markdown report to attach to a release ticket' })
      .option('jobs', { type: 'number', default: 4, describe: 'entries checked in parallel' })
      .option('keep-failed', { type: 'boolean', describe: 'keep the second output of a failed refetch or rebuild beside the first and print both paths' })
      .option('tls-verify', { type: 'boolean', default: true, describe: 'verify registry TLS; --tls-verify=false also allows plain http (as skopeo)' })
      .example('$0 audit', `audit ./${DEFAULT_LOCK_FILE}: drift, refetch, rebuild and store`)
      .example('$0 audit --checks drift,store release.lock.json', 'only the cheap checks')
      .example('$0 audit --nix images.nix --markdown > audit.md', 'audit nixpkgs pullImage pins without Nix')
      .epilogue([
        'Verdicts: ok, n/a (said why), drifted, mismatch, not-deterministic, damaged, absent, error, unsupported.',
        'Exit codes: 0 everything reproduced; 1 drift, a re-fetch mismatch, or a pin that could not be audited;',
        "104 a rebuild differs (as nix-build --check); 3 a stored copy is damaged; several at once: 100 + 1 (drift) + 4 (rebuild) + 8 (store), e.g. 109 = drift and damage.",
      ].join('\n')) as unknown as Argv<AuditArgs>,
  handler: async (a) => {
    if (!Number.isInteger(a.jobs) || a.jobs < 1) throw new UserError(`--jobs must be a positive integer, got ${a.jobs}`, EXIT.usage);
    if (a.json && a.markdown) throw new UserError('give either --json or --markdown, not both', EXIT.usage);
    const checks = parseChecks(a.checks);
    const store = openStore(a);
    const { entries, baseDir } = collectEntries(a, store.storeDir);
    const onResult = progressLine(a);
    const { results, scratchKept } = await runAudit(entries, {
      store, checks, jobs: a.jobs, baseDir, callerEnv: process.env, tlsVerify: a.tlsVerify, keepFailed: a.keepFailed ?? false,
      log: (l) => note(a, l), ...(onResult ? { onResult } : {}),
    });
    if (onResult) process.stderr.write('\r\x1b[K');
    const code = auditExitCode(results);
    if (a.json) process.stdout.write(`${JSON.stringify({ exitCode: code, results, ...(scratchKept ? { kept: scratchKept } : {}) }, null, 2)}\n`);
    else if (a.markdown) process.stdout.write(renderAuditMarkdown(results));
    else process.stdout.write(`${renderAuditTable(results)}\n`);
    if (scratchKept && !a.json) process.stderr.write(`kept the second outputs in the store at ${scratchKept}\n`);
    process.exitCode = code;
  },
};
