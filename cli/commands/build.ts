import type { Argv, CommandModule } from 'yargs';
import { BuildSpecError } from '../../lib/build/spec-errors.js';
import { BUILTIN_BUILDERS } from '../../lib/builders/builtins.js';
import { DEFAULT_ROOT_TIMEOUT_S, DEFAULT_SOURCE_DATE_EPOCH, KEEP_FAILED_ENV_VAR, ROOT_TIMEOUT_ENV_VAR, SANDBOX_ENV_VAR, type BuildFormat } from '../../lib/builders/build-image-recipe.js';
import { InputHashMismatch, executeBuildPlan, planBuild, type BuildPlan } from '../../lib/builders/build-plan.js';
import type { LocalStore } from '../../lib/store/index.js';
import { reportBuild, type BuildReportArgs } from '../build-report.js';
import { emit, note, openStore, type GlobalArgs } from '../context.js';
import { EXIT, UserError } from '../errors.js';
import { terminalProgress } from '../progress.js';

interface BuildArgs extends BuildReportArgs {
  spec: string;
  sandbox?: 'auto' | 'namespace' | 'vm';
  format: BuildFormat;
  dryRun?: boolean;
  sourceDateEpoch?: number;
  keepFailed?: boolean;
  check?: boolean;
  timeout?: number;
}

const buildOptions = (y: Argv<GlobalArgs>) =>
  y
    .positional('spec', { type: 'string', demandOption: true, describe: 'build spec: JSON (or .yaml/.yml) with buildImage\'s arguments' })
    .option('sandbox', { choices: ['auto', 'namespace', 'vm'] as const, describe: 'where runAsRoot runs (default: the spec\'s "sandbox", else auto); never changes the output' })
    .option('check', { type: 'boolean', describe: 'build a valid output again and compare bit for bit, as nix-build --check (exit 104 when it differs; --keep-failed keeps the second)' })
    .option('out-link', { type: 'string', describe: 'make a symlink NAME here to the output, and keep it from gc while the link exists' })
    .option('add-root', { type: 'string', describe: 'protect the output with a store root named NAME (as store add-root)' })
    .conflicts('out-link', 'add-root')
    .option('format', { choices: ['docker-archive', 'oci'] as const, default: 'docker-archive' as BuildFormat, describe: 'docker-archive (compressed as the spec\'s compressor) or an OCI layout directory' })
    .option('dry-run', { type: 'boolean', describe: 'print what would be fetched, added and built, and the output path; do nothing' })
    .option('source-date-epoch', { type: 'number', describe: `mtime of the layer's files (env SOURCE_DATE_EPOCH; default ${DEFAULT_SOURCE_DATE_EPOCH}, as nixpkgs); part of the recipe` })
    .option('keep-failed', { type: 'boolean', describe: 'keep the build directory (with runAsRoot\'s upper dir, path printed) when the build fails' })
    .option('timeout', { type: 'number', describe: `seconds runAsRoot may run (VM boot included) before it is killed (default ${DEFAULT_ROOT_TIMEOUT_S}); never changes the output` })
    .example('$0 build redis.json --sandbox vm --timeout 900', 'run runAsRoot in a QEMU VM (KVM when it works, else TCG): same output path and bytes as the namespace sandbox')
    .example('$0 build app.json', 'build the image; prints its store path (a second run does no work)')
    .example('$0 build app.json --out-link result', './result → the image, rooted against gc')
    .example('$0 build app.json --json', 'storePath, path, imageName, imageTag, layerDiffId, configDigest, added, skipped, closureSize')
    .example('$0 build app.yaml --format oci --dry-run', 'what would happen, and the output path')
    .example('podman load -i "$($0 build app.json --json | jq -r .path)"', 'load the result (a gz archive needs docker, or gunzip first for podman 4.3)')
    .epilogue(
      'The spec\'s keys are dockerTools.buildImage\'s: name, tag, fromImage (a store path, a pin as printed by `fetch-image REF --json`, or another spec), ' +
      'copyToRoot (store paths, local directories, {"url","hash","unpack"}), keepContentsDirlinks, config, extraCommands, uid, gid, architecture, created, compressor, ' +
      'runAsRoot, diskSize, buildVMMemorySize, sandbox, network, shadow, shadowSetupVersion. See README "Building images".',
    ) as unknown as Argv<BuildArgs>;

export function sourceDateEpochOf(a: { sourceDateEpoch?: number }, env: NodeJS.ProcessEnv = process.env): number {
  const v = a.sourceDateEpoch ?? (env.SOURCE_DATE_EPOCH !== undefined && env.SOURCE_DATE_EPOCH !== '' ? Number(env.SOURCE_DATE_EPOCH) : DEFAULT_SOURCE_DATE_EPOCH);
  const from = a.sourceDateEpoch !== undefined ? '--source-date-epoch' : 'SOURCE_DATE_EPOCH';
  if (!Number.isSafeInteger(v) || v < 0 || v > 8589934591) throw new UserError(`${from} must be a whole number of seconds since 1970 (0 … 8589934591), got ${String(v)}`, EXIT.usage);
  return v;
}

function toUserError(e: unknown): never {
  if (e instanceof InputHashMismatch) throw new UserError(e.message, EXIT.hashMismatch);
  if (e instanceof BuildSpecError) throw new UserError(e.message, EXIT.failure);
  throw e;
}

/** What --dry-run reports: the inputs that are not valid yet and what making each takes. */
function dryRunLines(store: LocalStore, plan: BuildPlan, depth = 0): { lines: string[]; json: Record<string, unknown> } {
  const pad = '  '.repeat(depth);
  const lines: string[] = [];
  const inputs: Record<string, unknown>[] = [];
  for (const i of plan.inputs) {
    const valid = store.isValid(i.storePath);
    const action = valid ? 'valid' : i.kind === 'fetch' ? 'fetch' : i.kind === 'local' ? 'add' : i.kind === 'spec' ? 'build' : 'missing';
    const entry: Record<string, unknown> = { key: i.key, storePath: i.storePath, action };
    if (i.kind === 'local') entry.source = i.source;
    if (!valid) lines.push(`${pad}will ${action} ${i.key}: ${i.kind === 'local' ? `${i.source} → ` : ''}${i.storePath}`);
    if (i.kind === 'spec' && !valid) {
      const nested = dryRunLines(store, i.plan, depth + 1);
      lines.push(...nested.lines);
      entry.plan = nested.json;
    }
    inputs.push(entry);
  }
  const valid = store.isValid(plan.outPath);
  lines.push(`${pad}${valid ? 'valid (no work)' : 'will build'} ${plan.file}: ${plan.outPath}`);
  return { lines, json: { spec: plan.file, storePath: plan.outPath, valid, inputs } };
}

async function buildHandler(a: BuildArgs): Promise<void> {
  const store = openStore(a);
  const sourceDateEpoch = sourceDateEpochOf(a);
  if (a.timeout !== undefined && !(Number.isFinite(a.timeout) && a.timeout > 0)) throw new UserError(`--timeout must be a positive number of seconds, got ${String(a.timeout)}`, EXIT.usage);
  const plan = await planBuild(store, a.spec, { format: a.format, sourceDateEpoch, rootStage: true }).catch(toUserError);
  if (!a.quiet) for (const w of plan.warnings) process.stderr.write(`warning: ${w}\n`);
  if (a.dryRun) {
    const r = dryRunLines(store, plan);
    emit(a, r.json, () => r.lines);
    return;
  }
  if (a.check) {
    const { checkBuild } = await import('../build-check.js');
    const { recipeTextPath } = await import('../../lib/recipe/index.js');
    return checkBuild(store, a, plan.outPath, recipeTextPath(plan.recipe, store.storeDir));
  }
  let source = 'store';
  if (!store.isValid(plan.outPath)) {
    // Only a real build pays for the substituter set-up (the mirror config, the cache code).
    const { substitutersFor } = await import('../substituters.js');
    const sandbox = a.sandbox ?? plan.spec.sandbox ?? 'auto';
    const r = await executeBuildPlan(store, plan, {
      builders: BUILTIN_BUILDERS,
      substituters: substitutersFor({}),
      callerEnv: {
        ...process.env, [SANDBOX_ENV_VAR]: sandbox, [KEEP_FAILED_ENV_VAR]: a.keepFailed ? '1' : '',
        ...(a.timeout !== undefined ? { [ROOT_TIMEOUT_ENV_VAR]: String(a.timeout) } : {}),
      },
      keepFailed: a.keepFailed ?? false,
      progress: terminalProgress(a),
      log: (l: string) => note(a, l),
    }).catch(toUserError);
    source = r.source;
  }
  reportBuild(store, a, plan, source);
}

export const buildCommand: CommandModule<GlobalArgs, BuildArgs> = {
  command: 'build <spec>',
  describe: 'Build an image from a spec (dockerTools.buildImage\'s arguments) into the store: one new layer on its base',
  builder: buildOptions,
  handler: buildHandler,
};
