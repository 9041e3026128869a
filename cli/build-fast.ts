// `fetch-image build SPEC` when the output is valid already: plan the spec (local paths only by
// their remembered fingerprints), see the path is valid, print it — without yargs, the image
// writer or the builders (~40 ms of start-up that the answer does not need). Anything else
// (help, --dry-run, unknown flags, an invalid output, any error) falls through to the full command.
import { DEFAULT_SOURCE_DATE_EPOCH } from '../lib/builders/build-image-recipe.js';
import { planBuild } from '../lib/builders/build-plan.js';
import { reportBuild, type BuildReportArgs } from './build-report.js';
import { openStore } from './context.js';

const VALUE_FLAGS = new Set(['--store', '--out-link', '--add-root', '--format', '--source-date-epoch', '--sandbox']);
const CHOICES: Record<string, readonly string[]> = { '--format': ['docker-archive', 'oci'], '--sandbox': ['auto', 'namespace', 'vm'] };

interface FastArgs extends BuildReportArgs {
  spec?: string;
  format: 'docker-archive' | 'oci';
  sourceDateEpoch?: number;
}

function parse(argv: readonly string[]): FastArgs | undefined {
  const a: FastArgs = { format: 'docker-archive' };
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i]!;
    let value: string | undefined;
    if (flag.startsWith('--') && flag.includes('=')) [flag, value] = [flag.slice(0, flag.indexOf('=')), flag.slice(flag.indexOf('=') + 1)];
    if (flag === '--json') a.json = true;
    else if (flag === '--quiet' || flag === '-q') a.quiet = true;
    else if (VALUE_FLAGS.has(flag)) {
      value ??= argv[++i];
      if (value === undefined || (CHOICES[flag] && !CHOICES[flag].includes(value))) return undefined;
      if (flag === '--store') a.store = value;
      else if (flag === '--out-link') a.outLink = value;
      else if (flag === '--add-root') a.addRoot = value;
      else if (flag === '--format') a.format = value as FastArgs['format'];
      else if (flag === '--source-date-epoch') {
        if (!/^[0-9]+$/.test(value)) return undefined;
        a.sourceDateEpoch = Number(value);
      }
    } else if (flag.startsWith('-')) return undefined;
    else words.push(flag);
  }
  if (words.length !== 2 || words[0] !== 'build' || (a.outLink && a.addRoot)) return undefined;
  a.spec = words[1];
  return a;
}

export async function tryBuildFast(argv: readonly string[]): Promise<boolean> {
  const a = parse(argv);
  if (!a?.spec) return false;
  const env = process.env.SOURCE_DATE_EPOCH;
  if (a.sourceDateEpoch === undefined && env !== undefined && env !== '' && !/^[0-9]+$/.test(env)) return false;
  const sourceDateEpoch = a.sourceDateEpoch ?? (env ? Number(env) : DEFAULT_SOURCE_DATE_EPOCH);
  const store = openStore(a);
  let plan;
  try {
    plan = await planBuild(store, a.spec, { format: a.format, sourceDateEpoch, rootStage: true, cachedLocalOnly: true });
  } catch {
    return false; // the full command plans again and reports what is wrong
  }
  if (!store.isValid(plan.outPath)) return false;
  if (!a.quiet) for (const w of plan.warnings) process.stderr.write(`warning: ${w}\n`);
  reportBuild(store, a, plan, 'store');
  return true;
}
