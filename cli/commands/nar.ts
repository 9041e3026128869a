import { createReadStream } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { dumpPath, listNar, restoreNar, type NarEntry } from '../../lib/nar/index.js';
import { emit, type GlobalArgs } from '../context.js';
import { writeChunks } from '../write-stream.js';

interface NarArgs extends GlobalArgs {
  path?: string;
  dir?: string;
  file?: string;
}

const showPath = (e: NarEntry) => ['.', ...e.path.map((p) => p.toString('utf8'))].join('/');

export function narListing(entries: NarEntry[]): string[] {
  return entries.map((e) => {
    const mode = e.type === 'directory' ? 'dr-xr-xr-x' : e.type === 'symlink' ? 'lrwxrwxrwx' : e.executable ? '-r-xr-xr-x' : '-r--r--r--';
    const tail = e.type === 'symlink' ? ` -> ${e.target!.toString('utf8')}` : '';
    return `${mode} ${String(e.size ?? 0).padStart(12)} ${showPath(e)}${tail}`;
  });
}

export const narCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'nar <command>',
  describe: 'Write, restore and list NAR archives (Nix ARchive format)',
  builder: (y) =>
    y
      .command<NarArgs>({
        command: 'dump <path>',
        describe: 'Write the NAR of a path to stdout (as nix-store --dump)',
        builder: (yy) => yy.positional('path', { type: 'string', demandOption: true })
          .example('$0 nar dump ./dir > dir.nar', 'serialise ./dir') as Argv<NarArgs>,
        handler: async (a) => {
          if (process.stdout.isTTY) throw new Error('refusing to write a NAR to a terminal: redirect stdout to a file or pipe');
          await writeChunks(dumpPath(a.path!), process.stdout);
        },
      })
      .command<NarArgs>({
        command: 'restore <dir>',
        describe: 'Restore a NAR read from stdin into a new directory (as nix-store --restore)',
        builder: (yy) => yy.positional('dir', { type: 'string', demandOption: true })
          .example('$0 nar restore ./out < dir.nar', 'unpack dir.nar into ./out (which must not exist)') as Argv<NarArgs>,
        handler: async (a) => {
          await restoreNar(process.stdin, a.dir!);
        },
      })
      .command<NarArgs>({
        command: 'ls <file>',
        describe: 'List the contents of a NAR file (validating it fully)',
        builder: (yy) => yy.positional('file', { type: 'string', demandOption: true })
          .example('$0 nar ls dir.nar', 'one line per entry: mode, size, path')
          .example('$0 nar ls --json dir.nar', 'entries as JSON') as Argv<NarArgs>,
        handler: async (a) => {
          const entries = await listNar(createReadStream(a.file!));
          emit(a, entries.map((e) => ({
            path: showPath(e), type: e.type,
            ...(e.type === 'regular' ? { size: e.size, executable: e.executable } : {}),
            ...(e.target ? { target: e.target.toString('utf8') } : {}),
          })), () => narListing(entries));
        },
      })
      .demandCommand(1, 'choose one of: dump, restore, ls'),
  handler: () => undefined,
};
