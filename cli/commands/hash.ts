import type { Argv, CommandModule } from 'yargs';
import { HASH_ALGOS, parseHash, type Hash, type HashAlgo, type HashFormat } from '../../lib/hash/index.js';
import { hashFlat, hashPath } from '../../lib/nar/index.js';
import { emit, type GlobalArgs } from '../context.js';
import { EXIT, UserError } from '../errors.js';

interface HashArgs extends GlobalArgs {
  mode?: string;
  path?: string;
  type: HashAlgo;
  base16?: boolean;
  base32?: boolean;
  base64?: boolean;
  sri?: boolean;
}

function chosenFormat(a: HashArgs): HashFormat {
  if (a.base16) return 'base16';
  if (a.base32) return 'nix32';
  if (a.base64) return 'base64';
  return 'sri';
}

export function printHash(args: GlobalArgs, h: Hash, fmt: HashFormat, extra: Record<string, unknown> = {}): void {
  emit(args, { hash: h.format(fmt), algo: h.algo, base16: h.base16, nix32: h.nix32, base64: h.base64, sri: h.sri, ...extra }, () => h.format(fmt));
}

const formatOptions = (y: Argv) =>
  y
    .option('type', { choices: HASH_ALGOS, default: 'sha256' as HashAlgo, describe: 'hash algorithm' })
    .option('base16', { type: 'boolean', describe: 'print in base16 (hex)' })
    .option('base32', { type: 'boolean', describe: "print in Nix's base-32 (as nix-hash --base32)" })
    .option('base64', { type: 'boolean', describe: 'print in base64' })
    .option('sri', { type: 'boolean', describe: 'print as SRI, e.g. sha256-… (the default)' })
    .conflicts({ base16: ['base32', 'base64', 'sri'], base32: ['base64', 'sri'], base64: ['sri'] });

export const hashCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'hash <command>',
  describe: 'Hash files and trees, convert hash encodings',
  builder: (y) =>
    y
      .command<HashArgs>({
        command: 'path <path>',
        describe: 'Hash the NAR serialisation of a path (as nix-hash / nix hash path)',
        builder: (yy) => formatOptions(yy.positional('path', { type: 'string', demandOption: true }))
          .example('$0 hash path ./src', 'SRI sha256 of the NAR of ./src')
          .example('$0 hash path --base32 ./src', 'same hash as `nix-hash --type sha256 --base32 ./src`') as Argv<HashArgs>,
        handler: async (a) => printHash(a, (await hashPath(a.path!, a.type)).hash, chosenFormat(a)),
      })
      .command<HashArgs>({
        command: 'file <path>',
        describe: 'Hash the bytes of a regular file (as nix-hash --flat)',
        builder: (yy) => formatOptions(yy.positional('path', { type: 'string', demandOption: true }))
          .example('$0 hash file image.tar --base16', 'hex sha256 of the file') as Argv<HashArgs>,
        handler: async (a) => printHash(a, (await hashFlat(a.path!, a.type)).hash, chosenFormat(a)),
      })
      .command<HashArgs & { to: string; hash: string }>({
        command: 'convert <hash>',
        describe: 'Re-encode a hash (SRI, algo:base16/nix32/base64, or bare with --type)',
        builder: (yy) =>
          yy
            .positional('hash', { type: 'string', demandOption: true })
            .option('to', { choices: ['base16', 'nix32', 'base32', 'base64', 'sri'], demandOption: true, describe: 'target encoding' })
            .option('type', { choices: HASH_ALGOS, describe: 'algorithm of a bare hash' })
            .example('$0 hash convert --to nix32 sha256-d6xi4mKdjkX2JFicDIv5niSzpyI0m/Hnm8GGAIU04kY=', 'SRI to nix32')
            .example('$0 hash convert --to sri --type sha256 0sjjj9z1dhilhpc8pq4154czrb79z9cm044jvn75kxcjv6v5l2m5', 'bare nix32 to SRI') as Argv<HashArgs & { to: string; hash: string }>,
        handler: (a) => {
          let h: Hash;
          try {
            h = parseHash(a.hash, a.type);
          } catch (e) {
            throw new UserError((e as Error).message, EXIT.usage); // a malformed hash is a usage error
          }
          if (a.type !== undefined && h.algo !== a.type) throw new UserError(`--type ${a.type} does not apply to a ${h.algo} hash (it names the algorithm of a bare digest)`, EXIT.usage);
          printHash(a, h, (a.to === 'base32' ? 'nix32' : a.to) as HashFormat);
        },
      })
      .demandCommand(1, 'choose one of: path, file, convert'),
  handler: () => undefined,
};
