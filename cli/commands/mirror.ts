import { chmodSync, createReadStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import {
  exportToCache, formatPublicKey, formatSecretKey, generateKeyPair, importFromCache, isCompression,
  mirrorConfigPath, openCache, parseSecretKey, parseTrustedKeys, readBundle, resolvePathArgs, serveStore, substituteFromCaches,
  writeBundle, writeBundleFile, COMPRESSIONS, DEFAULT_COMPRESSION, UNVERIFIED_NOTE, type Compression, type ImportedPath, type RefResolver, type SecretKey,
} from '../../lib/mirror/index.js';
import { count } from '../plural.js';
import { emit, note, openStore, type GlobalArgs } from '../context.js';
import { mirrorGroup } from './mirror-group.js';
import { EXIT, UserError, errnoText } from '../errors.js';
import { terminalProgress } from '../progress.js';
import { mirrorConfigFromArgs, withSubstituterOptions } from '../substituters.js';

interface MirrorArgs extends GlobalArgs {
  paths?: string[];
  name?: string;
  out?: string;
  force?: boolean;
  to?: string;
  from?: string;
  file?: string;
  compression?: string;
  signKey?: string;
  all?: boolean;
  trustedKey?: string[];
  substituter?: string[];
  checkSigs?: boolean;
  listen?: string;
  dir?: string;
  maxConcurrent?: number;
}

function compressionArg(c: string | undefined, fallback: Compression): Compression {
  if (c === undefined) return fallback;
  if (!isCompression(c)) throw new UserError(`unknown compression '${c}' (use ${COMPRESSIONS.join(', ')})`, EXIT.usage);
  return c;
}

function readSecretKey(file: string | undefined): SecretKey | undefined {
  if (!file) return undefined;
  try {
    return parseSecretKey(readFileSync(file, 'utf8'), file);
  } catch (e) {
    throw new UserError((e as Error).message.startsWith('secret key') ? (e as Error).message : `cannot read secret key ${file}: ${errnoText(e)}`);
  }
}

function parseListen(s: string | undefined): { host: string; port: number } {
  if (!s) return { host: '127.0.0.1', port: 0 };
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s) ?? /^()()(\d+)$/.exec(s);
  if (!m || Number(m[3]) > 65535) throw new UserError(`invalid --listen '${s}': use HOST:PORT, [IPv6]:PORT or PORT`, EXIT.usage);
  return { host: m[1] || m[2] || '127.0.0.1', port: Number(m[3]) };
}

const sub = <A>(m: CommandModule<MirrorArgs, A & MirrorArgs>) => m;

/**
 * What an import or unbundle did: a line per path imported (paths nothing proved, with no content
 * address, say so: they answer no pin unchecked), then a count (or that there was nothing to do).
 */
function importLines(r: readonly ImportedPath[]): string[] {
  const imported = r.filter((x) => x.imported);
  const valid = r.length - imported.length;
  if (!imported.length) return [r.length ? `nothing to import: ${count(valid, 'path')} already valid` : 'nothing to import: no paths'];
  return [
    ...imported.map((x) => `imported ${x.path}${x.verified === false ? ` (${UNVERIFIED_NOTE})` : ''}`),
    `${count(imported.length, 'path')} imported${valid ? `, ${valid} already valid` : ''}`,
  ];
}

export interface MirrorCommandOptions<E = GlobalArgs> {
  /** Turns image references (`ubuntu:latest`, a pin) into store paths; without it only store paths are taken. */
  resolveRef?: RefResolver;
  /** More `mirror` subcommands that live elsewhere, e.g. the registry `sync` (cli/commands/sync.ts). */
  extraCommands?: readonly CommandModule<GlobalArgs, E>[];
}

/** The `mirror` command group. */
export function makeMirrorCommand<E = GlobalArgs>(opts: MirrorCommandOptions<E> = {}): CommandModule<GlobalArgs, GlobalArgs> {
  const pathsOf = async (a: MirrorArgs): Promise<string[]> => {
    const store = openStore(a);
    try {
      return await resolvePathArgs(store, a.paths ?? [], opts.resolveRef);
    } catch (e) {
      throw new UserError((e as Error).message);
    }
  };
  return mirrorGroup((y) =>
    y
      .command(sub({
        command: 'keygen <name>',
        describe: 'Make an Ed25519 signing key pair (files interchangeable with nix-store --generate-binary-cache-key)',
        builder: (yy) => yy
          .positional('name', { type: 'string', demandOption: true, describe: 'key name, e.g. cache.example.org-1' })
          .option('out', { type: 'string', demandOption: true, describe: 'write OUT.secret (mode 600) and OUT.public' })
          .option('force', { type: 'boolean', describe: 'overwrite existing key files' })
          .example('$0 mirror keygen cache.lan-1 --out ./cache', 'writes cache.secret and cache.public; prints the public key') as Argv<MirrorArgs>,
        handler: (a) => {
          const secretFile = `${a.out!}.secret`;
          const publicFile = `${a.out!}.public`;
          for (const f of [secretFile, publicFile]) if (existsSync(f) && !a.force) throw new UserError(`${f} exists (use --force to overwrite)`);
          let key: SecretKey;
          try {
            key = generateKeyPair(a.name!);
          } catch (e) {
            throw new UserError((e as Error).message, EXIT.usage);
          }
          writeFileSync(secretFile, formatSecretKey(key), { mode: 0o600 });
          chmodSync(secretFile, 0o600); // also when --force replaced an existing file
          writeFileSync(publicFile, formatPublicKey(key.publicKey));
          emit(a, { name: key.name, secretKeyFile: resolve(secretFile), publicKeyFile: resolve(publicFile), publicKey: formatPublicKey(key.publicKey) },
            () => formatPublicKey(key.publicKey));
        },
      }))
      .command(sub({
        command: 'export <paths..>',
        describe: 'Write store paths and their closures as a Nix binary cache directory',
        builder: (yy) => yy
          .positional('paths', { type: 'string', array: true, demandOption: true, describe: 'store paths (/nix/store/…, real paths or base names)' })
          .option('to', { type: 'string', demandOption: true, describe: 'cache directory (created if missing)' })
          .option('compression', { type: 'string', choices: COMPRESSIONS, describe: `NAR compression (default ${DEFAULT_COMPRESSION}; xz for Nix older than 2.4)` })
          .option('sign-key', { type: 'string', describe: 'secret key file to sign narinfos with' })
          .example('$0 mirror export --to /mnt/usb/cache --sign-key cache.secret /nix/store/…-image.tar', 'a signed, zstd-compressed cache')
          .example("nix copy --from file:///mnt/usb/cache --option trusted-public-keys \"$(cat cache.public)\" /nix/store/…", 'real Nix reads it') as Argv<MirrorArgs>,
        handler: async (a) => {
          const store = openStore(a);
          const paths = await pathsOf(a);
          const signKey = readSecretKey(a.signKey);
          const dir = resolve(a.to!);
          const r = await exportToCache(store, paths, dir, {
            compression: compressionArg(a.compression, DEFAULT_COMPRESSION), ...(signKey ? { signKey } : {}),
            progress: terminalProgress(a), log: (l) => note(a, l),
          });
          const written = r.filter((x) => x.written).length;
          // Each path once, on stdout; the summary counts them.
          emit(a, { cache: dir, paths: r }, () => [...r.map((x) => `${x.written ? 'exported' : 'present '} ${x.path}`), `${count(written, 'path')} written, ${r.length - written} already in ${dir}`]);
        },
      }))
      .command(sub({
        command: 'import [paths..]',
        describe: 'Copy paths (with their closures) from a binary cache into the store, verifying signatures and hashes',
        builder: (yy) => yy
          .positional('paths', { type: 'string', array: true, nargs: 1, describe: 'store paths, base names or hash parts' })
          .option('from', { type: 'string', demandOption: true, describe: 'cache: directory, file:// or http(s):// URL' })
          .option('all', { type: 'boolean', describe: 'every path in a directory cache' })
          .option('trusted-key', { type: 'string', array: true, nargs: 1, describe: 'public key NAME:BASE64 to trust (repeatable; also the config file)' })
          .option('check-sigs', { type: 'boolean', default: true, describe: 'require a trusted signature on every narinfo (--no-check-sigs to skip)' })
          .example('$0 mirror import --from /mnt/usb/cache --all --trusted-key "$(cat cache.public)"', 'everything in the cache')
          .example('$0 mirror import --from http://cache.lan:8080 /nix/store/…-image.tar', 'one path, keys from the config file') as Argv<MirrorArgs>,
        handler: async (a) => {
          if (!a.all && !a.paths?.length) throw new UserError('name the paths to import, or use --all', EXIT.usage);
          if (a.all && a.paths?.length) throw new UserError('give either paths or --all, not both', EXIT.usage);
          const store = openStore(a);
          const cfg = mirrorConfigFromArgs(a);
          const r = await importFromCache(store, openCache(a.from!), a.all ? 'all' : a.paths!, {
            trustedKeys: parseTrustedKeys(cfg.trustedPublicKeys), checkSigs: a.checkSigs !== false && cfg.requireSigs,
            progress: terminalProgress(a), log: (l) => note(a, l),
          }).catch((e: Error) => {
            throw new UserError(e.message);
          });
          emit(a, { paths: r }, () => importLines(r));
        },
      }))
      .command(sub({
        command: 'substitute <paths..>',
        describe: 'Make paths valid from the configured binary caches (--substituter, FETCH_IMAGE_SUBSTITUTERS, config file)',
        builder: (yy) => withSubstituterOptions(yy
          .positional('paths', { type: 'string', array: true, demandOption: true })
          .option('check-sigs', { type: 'boolean', default: true, describe: 'require trusted signatures (--no-check-sigs to skip)' }))
          .example('$0 mirror substitute /nix/store/…-image.tar --substituter http://cache.lan:8080 --trusted-key cache.lan-1:…', 'fetch one path and its closure') as Argv<MirrorArgs>,
        handler: async (a) => {
          const store = openStore(a);
          const cfg = mirrorConfigFromArgs(a);
          if (!cfg.substituters.length) throw new UserError(`no substituters: give --substituter or set them in ${mirrorConfigPath()}`, EXIT.usage);
          const out: { path: string; ok: boolean; failures: string[] }[] = [];
          for (const p of a.paths!) {
            const path = store.toStorePath(p);
            const failures: string[] = [];
            const info = await substituteFromCaches(store, path, cfg.substituters, cfg.trustedPublicKeys, { checkSigs: cfg.requireSigs, log: (l) => note(a, l), failures });
            out.push({ path, ok: info !== undefined, failures });
          }
          // A miss says "not found"; a cache that failed says why, so that a cache that is down is not taken for a miss.
          emit(a, { paths: out }, () => out.map((x) => x.ok ? `valid     ${x.path}` : x.failures.length ? `failed    ${x.path}: ${x.failures.join('; ')}` : `not found ${x.path}`));
          if (out.some((x) => !x.ok)) process.exitCode = EXIT.failure;
        },
      }))
      .command(sub({
        command: 'serve',
        describe: 'Serve the store (or an exported cache directory) as a read-only HTTP binary cache',
        builder: (yy) => yy
          .option('listen', { type: 'string', describe: 'HOST:PORT (default 127.0.0.1 and a free port)' })
          .option('sign-key', { type: 'string', describe: 'secret key file to sign narinfos with' })
          .option('compression', { type: 'string', choices: COMPRESSIONS, describe: 'how NARs are offered (default none: fastest on a LAN)' })
          .option('dir', { type: 'string', describe: 'serve this exported cache directory instead of the store' })
          .option('max-concurrent', { type: 'number', describe: 'NAR streams at once (default 8); more requests queue' })
          .example('$0 mirror serve --listen 0.0.0.0:8080 --sign-key cache.secret', 'then: nix copy --from http://HOST:8080 …')
          .example('$0 mirror serve --dir /mnt/usb/cache', 'serve an exported cache as it is') as Argv<MirrorArgs>,
        handler: async (a) => {
          const store = openStore(a);
          const signKey = readSecretKey(a.signKey);
          const { host, port } = parseListen(a.listen);
          if (a.maxConcurrent !== undefined && (!Number.isInteger(a.maxConcurrent) || a.maxConcurrent < 1)) {
            throw new UserError(`--max-concurrent must be a positive integer, got ${a.maxConcurrent}`, EXIT.usage);
          }
          const srv = await serveStore(store, {
            host, port, compression: compressionArg(a.compression, 'none'), ...(signKey ? { signKey } : {}),
            ...(a.dir ? { cacheDir: resolve(a.dir) } : {}), ...(a.maxConcurrent !== undefined ? { maxConcurrent: a.maxConcurrent } : {}),
            log: (l) => process.stderr.write(`${l}\n`),
          });
          emit(a, { url: srv.url }, () => srv.url);
          await new Promise<void>((done) => {
            const stop = () => void srv.close().then(done);
            process.once('SIGINT', stop);
            process.once('SIGTERM', stop);
          });
        },
      }))
      .command(sub({
        command: 'bundle <paths..>',
        describe: 'Write store paths and their closures as one nix-store --export stream',
        builder: (yy) => yy
          .positional('paths', { type: 'string', array: true, demandOption: true })
          .option('to', { type: 'string', demandOption: true, describe: "bundle file ('-' for stdout)" })
          .example('$0 mirror bundle --to image.closure /nix/store/…-image.tar', 'then: nix-store --import < image.closure')
          .example('$0 mirror bundle --to - /nix/store/…-x | ssh host fetch-image mirror unbundle -', 'stream it') as Argv<MirrorArgs>,
        handler: async (a) => {
          const store = openStore(a);
          const paths = await pathsOf(a);
          if (a.to === '-' || a.to === '') { // yargs hands a lone '-' over as ''
            await writeBundle(store, paths, process.stdout);
            return;
          }
          const written = await writeBundleFile(store, paths, resolve(a.to!), { progress: terminalProgress(a) });
          emit(a, { bundle: resolve(a.to!), paths: written }, () => written);
        },
      }))
      .command(sub({
        command: 'unbundle <file>',
        describe: 'Import a nix-store --export stream (all or nothing per path)',
        builder: (yy) => yy
          .positional('file', { type: 'string', demandOption: true, describe: "bundle file ('-' for stdin)" })
          .example('$0 mirror unbundle image.closure', 'import what mirror bundle or nix-store --export wrote')
          .example('nix-store --export $(nix-store -qR /nix/store/…) | $0 mirror unbundle -', 'straight from Nix') as Argv<MirrorArgs>,
        handler: async (a) => {
          const store = openStore(a);
          const stdin = a.file === '-' || a.file === ''; // yargs hands a lone '-' over as ''
          const input = stdin ? process.stdin : createReadStream(resolve(a.file!), { highWaterMark: 1 << 20 });
          const r = await readBundle(store, input, { where: stdin ? 'stdin' : a.file!, progress: terminalProgress(a), log: (l) => note(a, l) })
            .catch((e: NodeJS.ErrnoException) => {
              // The stream's own open error names no bundle: say which file could not be read.
              throw new UserError(e.syscall === 'open' && e.path ? `cannot read bundle ${a.file!}: ${errnoText(e)}` : e.message);
            });
          emit(a, { paths: r }, () => importLines(r));
        },
      }))
      .command(sub({
        command: 'config',
        describe: 'Show the mirror settings: --substituter/--trusted-key flags, then FETCH_IMAGE_SUBSTITUTERS and FETCH_IMAGE_TRUSTED_PUBLIC_KEYS, then $FETCH_IMAGE_CONFIG or $XDG_CONFIG_HOME/fetch-image/config.json',
        builder: (yy) => withSubstituterOptions(yy)
          .example('$0 mirror config', 'config file location, substituters, trusted keys')
          .example('$0 mirror config --json --substituter http://cache.lan:8080', 'what a command given these flags would use')
          .epilogue('config.json: {"substituters": ["http://cache.lan:8080", "/mnt/usb/cache"], "trustedPublicKeys": ["cache.lan-1:BASE64…"], "requireSigs": true}') as Argv<MirrorArgs>,
        handler: (a) => {
          const cfg = mirrorConfigFromArgs(a);
          emit(a, { file: mirrorConfigPath(), ...cfg }, () => [
            `config file:   ${mirrorConfigPath()}${cfg.file ? '' : ' (absent)'}`,
            `substituters:  ${cfg.substituters.join(' ') || '(none)'}`,
            `trusted keys:  ${cfg.trustedPublicKeys.join(' ') || '(none)'}`,
            `require sigs:  ${cfg.requireSigs}`,
          ]);
        },
      }))
      .command([...(opts.extraCommands ?? [])]));
}

export const mirrorCommand = makeMirrorCommand();
