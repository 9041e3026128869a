import { basename, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import type { LocalStore, PathInfo } from '../../lib/store/index.js';
import { dumpPath } from '../../lib/nar/index.js';
import { EXIT, UserError } from '../errors.js';
import { emit, openStore, type GlobalArgs } from '../context.js';
import { writeChunks } from '../write-stream.js';

interface StoreArgs extends GlobalArgs {
  paths?: string[];
  path?: string;
  flat?: boolean;
  name?: string;
  checkContents?: boolean;
  dryRun?: boolean;
  printDead?: boolean;
  recursive?: boolean;
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
          .example('$0 store add ./src', 'recursive sha256, like nix-store --add-fixed --recursive sha256 ./src')
          .example('$0 store add --flat --name img.tar ./image.tar', 'flat sha256 of a file') as Argv<StoreArgs>,
        handler: async (a) => {
          const store = openStore(a);
          const src = resolve(a.path!);
          const info = await store.addPath(src, { name: a.name ?? basename(src), method: a.flat ? 'flat' : 'recursive' });
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
        describe: 'Check the store: references valid, and with --check-contents every NAR hash (exit 3 if anything is wrong)',
        builder: (yy) => yy
          .option('check-contents', { type: 'boolean', describe: 're-hash every path and compare with the recorded NAR hash' })
          .example('$0 store verify --check-contents', 'prove every path is still what was registered') as Argv<StoreArgs>,
        handler: async (a) => {
          const store = openStore(a);
          const r = await store.verify({ checkContents: a.checkContents ?? false });
          emit(a, r, () => [...r.problems.map((p) => `${p.path}: ${p.problem}`), `checked ${r.checked} paths, ${r.problems.length} bad`]);
          if (r.problems.length) process.exitCode = EXIT.verifyFailed;
        },
      }))
      .command(sub({
        command: 'gc',
        describe: 'Delete paths not reachable from a GC root',
        builder: (yy) => yy
          .option('dry-run', { type: 'boolean', describe: 'only report what would be deleted' })
          .option('print-dead', { type: 'boolean', describe: 'list dead paths without deleting (same as --dry-run)' })
          .example('$0 store gc --dry-run', 'show what is garbage')
          .example('$0 store gc', 'delete it') as Argv<StoreArgs>,
        handler: async (a) => {
          const store = openStore(a);
          const dry = Boolean(a.dryRun || a.printDead);
          const r = await store.gc({ dryRun: dry });
          emit(a, { ...r, dryRun: dry }, () => [...r.dead, `${dry ? 'would delete' : 'deleted'} ${r.dead.length} paths, ${r.bytesFreed} NAR bytes`]);
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
        describe: 'Protect a path (and its closure) from gc with a root symlink',
        builder: (yy) => yy.positional('path', { type: 'string', demandOption: true }).positional('name', { type: 'string' })
          .example('$0 store add-root /nix/store/…-image.tar prod-image', 'root named prod-image') as Argv<StoreArgs>,
        handler: (a) => {
          const store = openStore(a);
          const link = store.addRoot(store.toStorePath(a.path!), a.name);
          emit(a, { root: link }, () => link);
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
      .demandCommand(1, 'choose one of: add, path-info, closure, ls, verify, gc, delete, add-root, dump'),
  handler: () => undefined,
};
