import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import {
  DEFAULT_LOCK_FILE, emptyLock, lockBuild, lockImage, lockUrl, parseLock, serializeLock, withPin, type LockFile,
} from '../../lib/audit/index.js';
import { BUILTIN_BUILDERS } from '../../lib/builders/index.js';
import type { RealiseOptions } from '../../lib/recipe/index.js';
import { writeFileAtomic } from '../../lib/store/index.js';
import { note, openStore, type GlobalArgs } from '../context.js';
import { EXIT, UserError } from '../errors.js';
import { terminalProgress } from '../progress.js';

interface LockArgs extends GlobalArgs {
  refs?: string[];
  from?: string;
  spec?: string[];
  lock: string;
  tlsVerify: boolean;
  creds?: string;
  os?: string;
  arch?: string;
  variant?: string;
}

/** A line of a --from list: an image reference, a URL, or `unpack URL`; `#` starts a comment. */
export function readPinList(text: string, file: string): { kind: 'image' | 'url'; value: string; unpack: boolean }[] {
  const out: { kind: 'image' | 'url'; value: string; unpack: boolean }[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const words = line.split(/\s+/);
    const unpack = words[0] === 'unpack';
    const value = unpack ? words[1] : words[0];
    if (!value || words.length > (unpack ? 2 : 1)) throw new UserError(`${file}:${i + 1}: expected one image reference or URL per line (or 'unpack URL'), got '${line}'`, EXIT.usage);
    const isUrl = /^(https?|file):\/\//.test(value);
    if (unpack && !isUrl) throw new UserError(`${file}:${i + 1}: 'unpack' takes a URL, got '${value}'`, EXIT.usage);
    out.push({ kind: isUrl ? 'url' : 'image', value, unpack });
  });
  return out;
}

/** The lock file as it is now (empty when it does not exist yet). */
export function loadLock(file: string): LockFile {
  if (!existsSync(file)) return emptyLock();
  try {
    return parseLock(readFileSync(file, 'utf8'), file);
  } catch (e) {
    throw new UserError(`${(e as Error).message} (fix or remove the file, then lock again)`);
  }
}

export const lockCommand: CommandModule<GlobalArgs, LockArgs> = {
  command: 'lock [refs..]',
  describe: `Pin images and URLs into a lock file (${DEFAULT_LOCK_FILE}) for later audits`,
  builder: (y) =>
    y
      .positional('refs', { type: 'string', array: true, describe: 'image references (name[:tag][@digest]) or URLs' })
      .option('from', { type: 'string', requiresArg: true, describe: "a list file: one image reference or URL per line ('unpack URL' for fetchzip-style), # comments" })
      .option('spec', { type: 'string', array: true, nargs: 1, requiresArg: true, describe: 'a build spec to build (no work when valid) and pin with its output NAR hash (repeatable)' })
      .option('lock', { type: 'string', requiresArg: true, default: DEFAULT_LOCK_FILE, describe: 'the lock file to create or update' })
      .option('tls-verify', { type: 'boolean', default: true, describe: 'verify registry TLS; --tls-verify=false also allows plain http (recorded in the pin)' })
      .option('creds', { type: 'string', requiresArg: true, describe: 'registry credentials user:password (never stored or logged)' })
      .option('os', { type: 'string', requiresArg: true, describe: 'platform OS (default linux)' })
      .option('arch', { type: 'string', requiresArg: true, describe: "platform architecture (default: this machine's)" })
      .option('variant', { type: 'string', requiresArg: true, describe: 'platform variant' })
      .example('$0 lock debian:bookworm ghcr.io/org/app:1.4', 'pin two images into ./fetch-image.lock.json')
      .example('$0 lock --from pins.txt --lock release.lock.json', 'pin every image and URL listed in pins.txt')
      .example('$0 lock --spec app.json', 'build app.json (no work when valid) and pin its output for audit --checks rebuild')
      .example('$0 lock https://example.org/src-1.0.tar.gz', 'pin a download (its ETag and size are kept as drift hints)')
      .epilogue('Entries are updated in place (same image and tag, same URL) and kept sorted, so locking the same pins again gives no diff.') as unknown as Argv<LockArgs>,
  handler: async (a) => {
    if (a.lock === '') throw new UserError('empty --lock: give the lock file to write', EXIT.usage);
    if (a.creds !== undefined && !a.creds.includes(':')) throw new UserError('--creds must be user:password', EXIT.usage);
    const wanted = [
      ...(a.refs ?? []).map((value) => ({ kind: /^(https?|file):\/\//.test(value) ? 'url' as const : 'image' as const, value, unpack: false })),
      ...(a.from !== undefined ? readPinList(readFileSync(a.from, 'utf8'), a.from) : []),
    ];
    if (wanted.length === 0 && !a.spec?.length) throw new UserError('nothing to lock: give image references or URLs, --from LIST or --spec SPEC', EXIT.usage);
    for (const spec of a.spec ?? []) {
      if (!existsSync(spec)) throw new UserError(`cannot read --spec '${spec}': no such file`, EXIT.usage);
    }
    const store = openStore(a);
    const callerEnv: NodeJS.ProcessEnv = { ...process.env, ...(a.creds ? { FETCH_IMAGE_CREDS: a.creds } : {}) };
    const realise: RealiseOptions = { builders: BUILTIN_BUILDERS, callerEnv, progress: terminalProgress(a), log: (l) => note(a, l) };
    const file = resolve(a.lock);
    const before = loadLock(file);
    let lock = before;
    for (const w of wanted) {
      note(a, `locking ${w.value}`);
      if (w.kind === 'url') lock = withPin(lock, { url: await lockUrl(store, w.value, { unpack: w.unpack, realise }) });
      else {
        lock = withPin(lock, {
          image: await lockImage(store, w.value, {
            tlsVerify: a.tlsVerify, ...(a.os ? { os: a.os } : {}), ...(a.arch ? { arch: a.arch } : {}), ...(a.variant ? { variant: a.variant } : {}), realise,
          }),
        });
      }
    }
    for (const spec of a.spec ?? []) {
      note(a, `locking the build of ${spec}`);
      lock = withPin(lock, { build: await lockBuild(store, spec, dirname(file), { callerEnv, log: (l) => note(a, l) }) });
    }
    const text = serializeLock(lock);
    const changed = text !== serializeLock(before);
    if (changed) writeFileAtomic(file, text);
    const count = lock.images.length + lock.urls.length + lock.builds.length;
    if (a.json) process.stdout.write(`${JSON.stringify({ lockFile: file, changed, lock }, null, 2)}\n`);
    else process.stdout.write(`${changed ? 'wrote' : 'unchanged:'} ${file} (${count} pin${count === 1 ? '' : 's'})\n`);
  },
};
