import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { diffPaths, renderDiff, renderDiffMarkdown } from '../../lib/audit/index.js';
import type { LocalStore } from '../../lib/store/index.js';
import { openStore, type GlobalArgs } from '../context.js';
import { EXIT, UserError } from '../errors.js';

interface DiffArgs extends GlobalArgs {
  a: string;
  b: string;
  markdown?: boolean;
  depth: number;
}

/** A store path (logical, as printed) is read from its real location; anything else is a file or directory. */
export function locate(store: () => LocalStore, p: string): string {
  if (p.startsWith('/nix/store/') || (!existsSync(p) && /^[0-9a-df-np-sv-z]{32}-/.test(p))) {
    const s = store();
    const storePath = s.toStorePath(p);
    if (!s.isValid(storePath)) throw new UserError(`${storePath} is not valid in the store ${s.root} (pull or build it first, or give a file)`);
    return s.realPath(storePath);
  }
  if (!existsSync(p)) throw new UserError(`${p}: no such file or directory`);
  return resolve(p);
}

export const diffCommand: CommandModule<GlobalArgs, DiffArgs> = {
  command: 'diff <a> <b>',
  describe: 'File-level differences between two store paths, archives, layers, trees or JSON files (like a small diffoscope)',
  builder: (y) =>
    y
      .positional('a', { type: 'string', demandOption: true, describe: 'store path or file' })
      .positional('b', { type: 'string', demandOption: true, describe: 'store path or file' })
      .option('markdown', { type: 'boolean', describe: 'a Markdown report (for a release ticket)' })
      .option('depth', { type: 'number', default: 3, describe: 'how deep archives inside archives (layers in images) are opened' })
      .example('$0 diff /nix/store/…-image.tar /nix/store/…-image.tar.check', 'which layer members differ, and where')
      .example('$0 diff old/config.json new/config.json', 'a JSON diff with sorted keys ("ordering only" when so)')
      .example('$0 diff --json a.tar b.tar', 'the report as JSON')
      .epilogue('Exit codes: 0 identical, 1 different (as diff(1)), 2 usage error.') as unknown as Argv<DiffArgs>,
  handler: async (a) => {
    if (!Number.isInteger(a.depth) || a.depth < 0) throw new UserError(`--depth must be a non-negative integer, got ${a.depth}`, EXIT.usage);
    if (a.json && a.markdown) throw new UserError('give either --json or --markdown, not both', EXIT.usage);
    let store: LocalStore | undefined;
    const lazyStore = (): LocalStore => (store ??= openStore(a));
    const report = await diffPaths(locate(lazyStore, a.a), locate(lazyStore, a.b), { depth: a.depth });
    if (a.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else process.stdout.write(`${a.markdown ? renderDiffMarkdown(report, `${a.a} vs ${a.b}`) : renderDiff(report)}\n`);
    if (!report.identical) process.exitCode = EXIT.failure;
  },
};
