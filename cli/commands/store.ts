import { basename, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { DamagedPathError, type GcResult, type LocalStore, type PathInfo, type VerifyProblem, type VerifyReport } from '../../lib/store/index.js';
import { dumpPath } from '../../lib/nar/index.js';
import { deriverOf } from '../../lib/recipe/index.js';
import type { RepairOutcome } from '../../lib/mirror/index.js';
import { EXIT, UserError } from '../errors.js';
import { emit, note, openStore, type GlobalArgs } from '../context.js';
import { mirrorConfigFromArgs, withSubstituterOptions } from '../substituters.js';
import { writeChunks } from '../write-stream.js';

interface StoreArgs extends GlobalArgs {
  paths?: string[];
  path?: string;
  flat?: boolean;
  name?: string;
  checkContents?: boolean;
  dryRun?: boolean;
  printDead?: boolean;
  repair?: boolean;
  deleteInvalid?: boolean;
  force?: boolean;
  substituter?: string[];
  trustedKey?: string[];
  checkSigs?: boolean;
  recursive?: boolean;
}

/** Bytes as gc and verify print them: exact, with a readable size beside. */
function bytes(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u < 0 ? `${n} bytes` : `${n} bytes (${v.toFixed(1)} ${units[u]})`;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function problemLine(p: VerifyProblem): string {
  return `${p.path}: ${p.problem}`;
}

/** Paths nothing in the store vouches for: not problems, but they answer no pin until hashed against one. */
function unverifiedLines(r: VerifyReport): string[] {
  return r.unverified.map((p) => `unverified ${p}: no content address and no stored recipe; a pin (or a recipe) must hash it before it is trusted`);
}

function verifySummary(r: VerifyReport): string {
  const verified = r.caVerified ? `; ${plural(r.caVerified, 'content address', 'content addresses')} hashed and recorded as verified` : '';
  return `checked ${plural(r.checked, 'path')}: ${r.problems.length ? plural(r.problems.length, 'problem') : 'no problems'}${verified}`;
}

function gcLines(r: GcResult, dry: boolean): string[] {
  const verb = dry ? 'would free' : 'freed';
  return [
    ...r.dead,
    ...r.orphans.map((p) => `${p} (orphan: no metadata record)`),
    ...r.tempDirs.map((t) => `${t} (temp entry of a dead process)`),
    `${verb} ${bytes(r.bytesFreed)}: ${plural(r.dead.length, 'dead path')} (${bytes(r.deadBytes)}), ` +
      `${plural(r.orphans.length, 'orphan')} (${bytes(r.orphanBytes)}), ${plural(r.tempDirs.length, 'temp entry', 'temp entries')} of dead processes (${bytes(r.tempBytes)})`,
  ];
}

function repairLine(r: RepairOutcome): string {
  if (r.action === 'repaired') return `repaired ${r.path}: ${r.detail}`;
  if (r.action === 'deleted') return `deleted ${r.path} (${r.detail})`;
  return `cannot repair ${r.path}: ${r.detail}`;
}

/** verify, then with --repair fix what it can and verify again; exit 3 while anything is left. */
async function verifyHandler(a: StoreArgs): Promise<void> {
  if (a.deleteInvalid && !a.repair) throw new UserError('--delete-invalid works with --repair: fetch-image store verify --repair --delete-invalid', EXIT.usage);
  const store = openStore(a);
  const checkContents = a.checkContents ?? false;
  const verifyOnce = () => store.verify({ checkContents, deriverOf: (info) => deriverOf(store, info) });
  const first = await verifyOnce();
  if (!a.repair || !first.problems.length) {
    emit(a, first, () => [...first.problems.map(problemLine), ...unverifiedLines(first), verifySummary(first)]);
    if (first.problems.length) process.exitCode = EXIT.verifyFailed;
    return;
  }
  const [{ repairStore }, { BUILTIN_BUILDERS, defaultSubstituters }] = await Promise.all([import('../../lib/mirror/index.js'), import('../../lib/builders/index.js')]);
  const cfg = mirrorConfigFromArgs(a);
  const repairs = await repairStore(store, first.problems, {
    caches: cfg, builders: BUILTIN_BUILDERS, substituters: defaultSubstituters(), deleteInvalid: a.deleteInvalid ?? false, log: (l) => note(a, l),
  });
  const after = await verifyOnce();
  emit(a, { ...first, repairs, remaining: after.problems }, () => [
    ...first.problems.map(problemLine),
    ...repairs.map(repairLine),
    verifySummary(first),
    ...(after.problems.length
      ? [`${plural(after.problems.length, 'problem')} left`,
        `hint: give --substituter CACHE (with --trusted-key), re-add originals with 'store add --repair PATH'${a.deleteInvalid ? '' : ', or add --delete-invalid to delete what cannot be repaired'}`]
      : ['the store verifies now']),
  ]);
  if (after.problems.length) process.exitCode = EXIT.verifyFailed;
}

function infoJson(store: LocalStore, info: PathInfo): Record<string, unknown> {
  return { ...info, realPath: store.realPath(info.path) };
}

function infoLines(store: LocalStore, info: PathInfo): string[] {
  const lines = [
    info.path,
    `  real path:     ${store.realPath(info.path)}`,
    `  NAR hash:      ${info.narHash}`,
    `  NAR size:      ${info.narSize}`,
    `  references:    ${info.references.length ? info.references.join(' ') : '(none)'}`,
    `  registered:    ${new Date(info.registrationTime * 1000).toISOString()}`,
  ];
  if (info.ca) lines.push(`  ca:            ${info.ca}`);
  if (info.deriver) lines.push(`  deriver:       ${info.deriver}`);
  for (const s of info.signatures) lines.push(`  signature:     ${s}`);
  return lines;
}

const sub = <A>(m: CommandModule<StoreArgs, A & StoreArgs>) => m;

export const storeCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'store <command>',
  describe: 'Add, query, verify and garbage-collect the store',
  builder: (y) =>
    y
      .command(sub({
        command: 'add <path>',
        describe: 'Add a file or tree as a fixed-output path (as nix-store --add-fixed [--recursive] sha256)',
        builder: (yy) => yy
          .positional('path', { type: 'string', demandOption: true })
          .option('flat', { type: 'boolean', describe: 'hash the file bytes (a regular file only) instead of its NAR' })
          .option('name', { type: 'string', describe: 'store path name (default: base name of PATH)' })
          .option('repair', { type: 'boolean', describe: 'if the path is registered but its content is damaged, replace it with this copy' })
          .example('$0 store add ./src', 'recursive sha256, like nix-store --add-fixed --recursive sha256 ./src')
          .example('$0 store add --flat --name img.tar ./image.tar', 'flat sha256 of a file') as Argv<StoreArgs>,
        handler: async (a) => {
          const store = openStore(a);
          // An empty PATH (an unset variable) would resolve to the working directory: never add that by accident.
          if (a.path === undefined || a.path.trim() === '') throw new UserError('empty path given to store add: name the file or directory to add', EXIT.usage);
          const src = resolve(a.path);
          const info = await store.addPath(src, { name: a.name ?? basename(src), method: a.flat ? 'flat' : 'recursive', repair: a.repair ?? false })
            .catch((e: unknown) => {
              if (e instanceof DamagedPathError) throw new UserError(e.message);
              throw e;
            });
          emit(a, infoJson(store, info), () => info.path);
        },
      }))
      .command(sub({
        command: 'path-info <paths..>',
        describe: 'Show what the store records about paths (real location, NAR hash and size, references, ca, deriver, signatures)',
        builder: (yy) => yy.positional('paths', { type: 'string', array: true, demandOption: true })
          .option('recursive', { alias: 'r', type: 'boolean', describe: 'the whole closure: the paths and everything they reference, dependencies first' })
          .example('$0 store path-info /nix/store/…-myfile', 'human-readable')
          .example('$0 store path-info --recursive /nix/store/…-image.tar.gz', 'the image and every path it references')
          .example('$0 --json store path-info /nix/store/…-myfile', 'as JSON, with realPath') as Argv<StoreArgs>,
        handler: (a) => {
          const store = openStore(a);
          const named = a.paths!.map((p) => store.toStorePath(p));
          const infos = (a.recursive ? store.closure(named) : named).map((p) => store.requireInfo(p));
          emit(a, infos.map((i) => infoJson(store, i)), () => infos.flatMap((i) => infoLines(store, i)));
        },
      }))
      .command(sub({
        command: 'closure <paths..>',
        describe: 'Print the closure of paths under references (as nix-store --query --requisites), dependencies first',
        builder: (yy) => yy.positional('paths', { type: 'string', array: true, demandOption: true })
          .example('$0 store closure /nix/store/…-docker-image-app.tar', 'one path per line')
          .example('$0 --json store closure /nix/store/…-app', 'a JSON array of paths') as Argv<StoreArgs>,
        handler: (a) => {
          const store = openStore(a);
          const paths = store.closure(a.paths!.map((p) => store.toStorePath(p)));
          emit(a, paths, () => paths);
        },
      }))
      .command(sub({
        command: 'ls',
        describe: 'List valid store paths',
        builder: (yy) => yy.example('$0 store ls', 'one logical path per line') as Argv<StoreArgs>,
        handler: (a) => {
          const store = openStore(a);
          const infos = store.list();
          emit(a, infos.map((i) => infoJson(store, i)), () => infos.map((i) => i.path));
        },
      }))
      .command(sub({
        command: 'verify',
        describe: 'Check the store as nix-store --verify: missing content, unreadable records, orphans, invalid references; with --check-contents every NAR hash and content address (exit 3 if anything is wrong)',
        builder: (yy) => withSubstituterOptions(yy
          .option('check-contents', { type: 'boolean', describe: 're-hash every path: NAR hash, and content address against the content' })
          .option('repair', { type: 'boolean', describe: 're-fetch or re-import what is broken: substituters, then the recipe recorded as deriver' })
          .option('delete-invalid', { type: 'boolean', describe: 'with --repair: delete what cannot be repaired (and what refers to it)' })
          .option('check-sigs', { type: 'boolean', default: true, describe: 'substituted paths need a trusted signature (--no-check-sigs to skip)' }))
          .example('$0 store verify', 'records, content present, orphans, references (fast)')
          .example('$0 store verify --check-contents', 'prove every path is still what was registered')
          .example('$0 store verify --check-contents --repair --substituter /mnt/usb/cache', 'fix what is broken from a cache or by re-fetching')
          .example('$0 store verify --repair --delete-invalid', 'and delete what cannot be fixed') as Argv<StoreArgs>,
        handler: verifyHandler,
      }))
      .command(sub({
        command: 'gc',
        describe: 'Delete paths not reachable from a GC root, orphaned content and temp entries of dead processes; report the bytes freed',
        builder: (yy) => yy
          .option('dry-run', { type: 'boolean', describe: 'only report what would be deleted' })
          .option('print-dead', { type: 'boolean', describe: 'list dead paths without deleting (same as --dry-run)' })
          .example('$0 store gc --dry-run', 'show what is garbage and how many bytes it holds')
          .example('$0 store gc', 'delete it')
          .example('$0 --json store gc', 'dead, orphans, tempDirs and their bytes as JSON') as Argv<StoreArgs>,
        handler: async (a) => {
          const store = openStore(a);
          const dry = Boolean(a.dryRun || a.printDead);
          const r = await store.gc({ dryRun: dry });
          emit(a, { ...r, dryRun: dry }, () => gcLines(r, dry));
        },
      }))
      .command(sub({
        command: 'delete <paths..>',
        describe: 'Delete paths; refuses any path that is live (rooted or referenced)',
        builder: (yy) => yy.positional('paths', { type: 'string', array: true, demandOption: true })
          .example('$0 store delete /nix/store/…-old.tar', 'delete one unreferenced, unrooted path') as Argv<StoreArgs>,
        handler: async (a) => {
          const store = openStore(a);
          const paths = a.paths!.map((p) => store.toStorePath(p));
          await store.delete(paths).catch((e: Error) => {
            throw new UserError(e.message);
          });
          emit(a, { deleted: paths }, () => paths.map((p) => `deleted ${p}`));
        },
      }))
      .command(sub<{ name?: string }>({
        command: 'add-root <path> [name]',
        describe: 'Protect a path (and its closure) from gc with a named root; an existing root is repointed only with --force',
        builder: (yy) => yy.positional('path', { type: 'string', demandOption: true }).positional('name', { type: 'string', describe: 'root name (default: the base name of PATH)' })
          .option('force', { type: 'boolean', describe: 'repoint an existing root of that name to PATH' })
          .example('$0 store add-root /nix/store/…-image.tar prod-image', 'root named prod-image')
          .example('$0 store add-root --force /nix/store/…-image-v2.tar prod-image', 'move the root to a new image') as Argv<StoreArgs>,
        handler: (a) => {
          const store = openStore(a);
          const path = store.toStorePath(a.path!);
          let r: { link: string; previous?: string };
          try {
            r = store.addRoot(path, a.name, { force: a.force ?? false });
          } catch (e) {
            throw new UserError((e as Error).message);
          }
          emit(a, { root: r.link, path, ...(r.previous ? { previous: r.previous } : {}) }, () => `${r.link} -> ${path}${r.previous ? ` (was ${r.previous})` : ''}`);
        },
      }))
      .command(sub({
        command: 'roots',
        describe: 'List GC roots: name -> store path (dangling roots marked)',
        builder: (yy) => yy.example('$0 store roots', 'one root per line')
          .example('$0 --json store roots', '[{name, link, target, path?}] (no path: dangling)') as Argv<StoreArgs>,
        handler: (a) => {
          const roots = openStore(a).listRoots();
          emit(a, roots.map((r) => ({ ...r, dangling: r.path === undefined })), () => roots.map((r) => `${r.name} -> ${r.path ?? `${r.target} (dangling: not a valid path)`}`));
        },
      }))
      .command(sub<{ name?: string }>({
        command: 'remove-root <name>',
        describe: 'Remove a GC root (the path becomes garbage unless something else keeps it)',
        builder: (yy) => yy.positional('name', { type: 'string', demandOption: true })
          .example('$0 store remove-root prod-image', 'then store gc may delete it') as Argv<StoreArgs>,
        handler: (a) => {
          const store = openStore(a);
          let root;
          try {
            root = store.removeRoot(a.name!);
          } catch (e) {
            throw new UserError((e as Error).message);
          }
          emit(a, { removed: root.name, path: root.path ?? root.target }, () => `removed root ${root.name} (was -> ${root.path ?? root.target})`);
        },
      }))
      .command(sub({
        command: 'dump <path>',
        describe: 'Write the NAR of a store path to stdout (as nix-store --dump)',
        builder: (yy) => yy.positional('path', { type: 'string', demandOption: true })
          .example('$0 store dump /nix/store/…-src > src.nar', 'serialise a store path') as Argv<StoreArgs>,
        handler: async (a) => {
          const store = openStore(a);
          const p = store.toStorePath(a.path!);
          store.requireInfo(p);
          await writeChunks(dumpPath(store.realPath(p)), process.stdout);
        },
      }))
      .demandCommand(1, 'choose one of: add, path-info, closure, ls, verify, gc, delete, add-root, roots, remove-root, dump'),
  handler: () => undefined,
};
