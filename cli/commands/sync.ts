import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { parseCreds, parsePlatform, type Credentials, type Platform } from '../../lib/registry/index.js';
import { MAX_CHUNK_SIZE, parseListFile, parseSize, syncImages, type ImageReport, type SyncSource, type SyncSummary } from '../../lib/sync/index.js';
import { cacheHome } from '../../lib/xdg/index.js';
import { emit, note, type GlobalArgs } from '../context.js';
import { EXIT, UserError } from '../errors.js';
import { imageRefArg } from '../arg-checks.js';
import { count } from '../plural.js';

interface SyncArgs extends GlobalArgs {
  src?: string;
  dest?: string;
  allTags?: boolean;
  allPlatforms?: boolean;
  /** Repeatable, one value per occurrence (nargs 1: positionals may follow). */
  platform?: string[];
  dryRun?: boolean;
  chunkSize?: string;
  jobs: number;
  srcCreds?: string;
  destCreds?: string;
  srcTlsVerify: boolean;
  destTlsVerify: boolean;
  srcCertFile?: string;
  destCertFile?: string;
  list?: string;
}

function mib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

function usage(message: string): UserError {
  return new UserError(message, EXIT.usage);
}

/** SRC/DEST from the positionals: with --list the only positional is DEST. */
function endpoints(a: SyncArgs): { source: { kind: SyncSource['kind']; reference?: string }; dest: string } {
  if (a.list !== undefined) {
    if (a.dest !== undefined) throw usage('with --list give only DEST (the images come from the list)');
    if (a.src === undefined) throw usage('missing DEST: fetch-image mirror sync --list FILE DEST');
    if (a.allTags) throw usage('--all-tags and --list do not go together');
    return { source: { kind: 'list' }, dest: imageRefArg(a.src) };
  }
  if (a.src === undefined || a.dest === undefined) throw usage('expected SRC and DEST: fetch-image mirror sync SRC DEST (or --list FILE DEST)');
  return { source: { kind: a.allTags ? 'repository' : 'image', reference: imageRefArg(a.src) }, dest: imageRefArg(a.dest) };
}

function platformsOf(a: SyncArgs): 'all' | Platform[] | undefined {
  const given = a.platform ?? [];
  if (a.allPlatforms && given.length) throw usage('give either --all-platforms or --platform, not both');
  if (a.allPlatforms) return 'all';
  if (!given.length) return undefined;
  try {
    return given.map((p) => parsePlatform(p));
  } catch (e) {
    throw usage(`--platform: ${(e as Error).message}`);
  }
}

/** `--src-creds`/`--dest-creds`, labelled with the flag so that a refusal names it (never the value). */
function credsOf(value: string | undefined, flag: string): { credentials: Credentials } | Record<string, never> {
  if (value === undefined) return {};
  try {
    return { credentials: { ...parseCreds(value), source: flag } };
  } catch {
    throw usage(`invalid ${flag}: expected USERNAME:PASSWORD`);
  }
}

function imageLine(r: ImageReport, dry: boolean): string {
  const head = `${r.source} → ${r.destination}`;
  if (r.upToDate) return `${head}: up to date`;
  const b = r.blobs;
  const verb = dry ? 'would send' : 'sent';
  return `${head}: ${verb} ${b.sent} blob${b.sent === 1 ? '' : 's'} (${mib(dry ? r.blobList.filter((x) => x.action === 'send').reduce((n, x) => n + x.size, 0) : r.bytesSent)}), ${dry ? 'would mount' : 'mounted'} ${b.mounted}, skipped ${b.skipped}`;
}

function human(s: SyncSummary): string[] {
  const lines: string[] = [];
  for (const r of s.images) {
    lines.push(imageLine(r, s.dryRun));
    if (!s.dryRun || r.upToDate) continue;
    for (const b of r.blobList) lines.push(`  ${b.action.padEnd(5)} blob     ${b.digest}  ${mib(b.size)}${b.from ? `  from ${b.from}` : ''}`);
    for (const m of r.manifests) lines.push(`  ${m.action === 'push' ? 'push ' : 'skip '} manifest ${m.digest}  ${mib(m.size)}  as ${m.as}`);
  }
  const t = s.totals;
  if (s.images.length > 1) {
    lines.push(`${s.dryRun ? 'dry run: ' : ''}${count(t.images, 'image')}, ${count(t.blobs.sent, 'blob')} ${s.dryRun ? 'to send' : `sent (${mib(t.bytesSent)})`}, ${t.blobs.mounted} mounted, ${t.blobs.skipped} skipped, ${count(t.manifestsPushed, 'manifest')} ${s.dryRun ? 'to push' : 'pushed'}`);
  }
  return lines;
}

/** Where chunked upload sessions are remembered between runs (XDG cache). */
function uploadStateDir(): string {
  return join(cacheHome(), 'fetch-image', 'sync-uploads');
}

async function syncHandler(a: SyncArgs): Promise<void> {
  if (!Number.isInteger(a.jobs) || a.jobs < 1) throw usage(`--jobs must be a positive integer, got ${a.jobs}`);
  const { source, dest } = endpoints(a);
  const platforms = platformsOf(a);
  const srcCreds = credsOf(a.srcCreds, '--src-creds');
  const destCreds = credsOf(a.destCreds, '--dest-creds');
  let chunkSize = 0;
  if (a.chunkSize !== undefined) {
    try {
      chunkSize = parseSize(a.chunkSize, '--chunk-size');
    } catch (e) {
      throw usage((e as Error).message);
    }
    if (chunkSize > MAX_CHUNK_SIZE) throw usage(`--chunk-size ${a.chunkSize} is more than ${MAX_CHUNK_SIZE / 1024 / 1024}M (each parallel upload holds a chunk in memory)`);
  }
  let src: SyncSource;
  if (source.kind === 'list') {
    const file = a.list!;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new UserError(`--list ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    try {
      src = { kind: 'list', entries: parseListFile(text, file) };
    } catch (e) {
      throw new UserError((e as Error).message);
    }
  } else {
    src = { kind: source.kind, reference: source.reference! };
  }
  let summary: SyncSummary;
  try {
    summary = await syncImages({
      source: src,
      destination: dest,
      ...(platforms !== undefined ? { platforms } : {}),
      dryRun: a.dryRun ?? false,
      chunkSize,
      uploadStateDir: uploadStateDir(),
      jobs: a.jobs,
      src: { tlsVerify: a.srcTlsVerify, ...srcCreds, credentialsHint: 'use --src-creds, docker login or an auth.json', ...(a.srcCertFile ? { caFile: a.srcCertFile } : {}) },
      dest: { tlsVerify: a.destTlsVerify, ...destCreds, credentialsHint: 'use --dest-creds, docker login or an auth.json', ...(a.destCertFile ? { caFile: a.destCertFile } : {}) },
      // Bars only for a person watching: cli-progress is not even loaded otherwise.
      ...(!a.quiet && process.stderr.isTTY ? { progress: (await import('../progress.js')).terminalProgress(a) } : {}),
      log: (l) => note(a, `note: ${l}`),
    });
  } catch (e) {
    // Library errors are already one line naming what and where.
    throw new UserError((e as Error).message);
  }
  emit(a, summary, () => human(summary));
}

export const syncCommand: CommandModule<GlobalArgs, SyncArgs> = {
  command: 'sync [src] [dest]',
  describe: 'Copy images into another registry with the v2 upload API; digests are kept',
  builder: (y) =>
    y
      .positional('src', { type: 'string', describe: 'host/name:tag, host/name@sha256:…, or host/name with --all-tags (with --list: DEST)' })
      .positional('dest', { type: 'string', describe: 'host[:port] (keeps source paths), host/repo (one repository) or host/repo:tag (one image); a prefix with --list' })
      .option('all-tags', { type: 'boolean', describe: 'copy every tag of the SRC repository' })
      .option('list', { type: 'string', describe: 'file of pinned images, one name[:tag]@sha256:… per line (# comments)' })
      .option('all-platforms', { type: 'boolean', describe: 'copy whole multi-platform indexes (their digests are kept)' })
      .option('platform', { type: 'string', array: true, nargs: 1, describe: 'os/arch[/variant] to keep from an index (repeatable); default linux/<this machine>' })
      .option('dry-run', { type: 'boolean', describe: 'show what would be sent, mounted and skipped; write nothing' })
      .option('chunk-size', { type: 'string', describe: 'upload in PATCH chunks of this size (8M, 512K), resumable after a kill; default one streamed PUT per blob' })
      .option('jobs', { type: 'number', default: 6, describe: 'blobs copied in parallel' })
      .option('src-creds', { type: 'string', describe: 'source credentials user:password (never stored or logged)' })
      .option('dest-creds', { type: 'string', describe: 'destination credentials user:password (never stored or logged)' })
      .option('src-tls-verify', { type: 'boolean', default: true, describe: 'verify the source TLS certificate; false also allows plain http' })
      .option('dest-tls-verify', { type: 'boolean', default: true, describe: 'verify the destination TLS certificate; false also allows plain http' })
      .option('src-cert-file', { type: 'string', describe: 'PEM CA bundle to trust for the source' })
      .option('dest-cert-file', { type: 'string', describe: 'PEM CA bundle to trust for the destination' })
      .example('$0 mirror sync quay.io/org/app:1.2 registry.local:5000', 'one image; keeps its path: registry.local:5000/org/app:1.2')
      .example('$0 mirror sync --all-platforms docker.io/library/alpine:3.20 registry.local:5000/base/alpine', 'a multi-arch index, byte for byte, into a named repository')
      .example('$0 mirror sync --all-tags quay.io/org/app registry.local:5000/mirror/app', 'every tag of a repository')
      .example('$0 mirror sync --list images.txt registry.local:5000/mirror', 'pinned images under a prefix: registry.local:5000/mirror/<source path>')
      .example('$0 mirror sync --dry-run --json quay.io/org/app:1.2 registry.local:5000', 'what would be sent, mounted and skipped')
      .epilogue([
        'DEST: a bare host keeps each source path; host/repo is the repository for one image or one --all-tags repository; with --list, host/prefix goes in front of each source path. Tags are kept; images named by digest only are pushed by digest.',
        "Platforms: without --all-platforms an index is reduced to the chosen platforms. With one, the tag names that platform's manifest (as skopeo copy without --all); with several, a new index of just those entries (a new digest).",
        'Re-running skips what arrived: blobs already there are never sent again, and with --chunk-size an interrupted blob continues where its upload session stopped.',
      ].join('\n\n')) as unknown as Argv<SyncArgs>, // yargs' inferred kebab/camel keys
  handler: syncHandler,
};
