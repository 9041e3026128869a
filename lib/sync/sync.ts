/**
 * Registry-to-registry sync: each source image's blobs are skipped (already there), mounted
 * (same registry, or a repository this run already filled) or uploaded (streamed from the
 * source, never held in memory), then its manifests are pushed byte for byte, children before
 * the index, and the result is read back and checked against the source digest.
 *
 * Re-running is cheap and finishes an interrupted run: a manifest already in the destination
 * means all it references is there (the registry checked on push), and every blob is asked
 * for by HEAD before a byte is sent.
 */
import type { FetchOptions } from '../fetch/index.js';
import {
  RegistryClient, RegistryError, limitConcurrency, parseReference, wantedPlatform,
  type Descriptor, type ImageReference, type Limiter, type Platform,
} from '../registry/index.js';
import { BlobPusher, retryable, type Blob, type Session } from './blobs.js';
import { parseDestination, targetFor, type Destination, type SourceShape } from './destination.js';
import { RegistryHost, skipUnusedCaBundles, type HostOptions } from './host.js';
import { UploadJournal } from './journal.js';
import type { ListEntry } from './list-file.js';
import { ManifestPusher } from './manifests.js';
import { manifestsBottomUp, planSource, type ManifestNode } from './plan.js';
import { listTags } from './tags.js';

export type SyncSource =
  /** One image: `host/name:tag`, `host/name@sha256:…` (or both: fetched by digest, pushed by tag). */
  | { kind: 'image'; reference: string }
  /** Every tag of a repository: `host/name`. */
  | { kind: 'repository'; reference: string }
  /** Pinned images, as parsed from a `--list` file. */
  | { kind: 'list'; entries: readonly ListEntry[] };

/** Progress of blob uploads (the shape of cli/progress's terminalProgress()). */
export interface SyncProgress {
  start(id: string, label: string, total?: number): void;
  update(id: string, done: number, total?: number): void;
  finish(id: string): void;
}

export interface SyncOptions {
  source: SyncSource;
  /** `host[:port]`, `host[:port]/path` or `host[:port]/path:tag` (see destination.ts for the mapping). */
  destination: string;
  /** 'all' keeps indexes whole; otherwise the platforms to keep (default: linux + this machine's architecture). */
  platforms?: 'all' | readonly Platform[];
  /** Read everything, write nothing; the report says what would be sent, mounted and skipped. */
  dryRun?: boolean;
  /** Upload in PATCH chunks of this many bytes; 0 or undefined = one streamed PUT per blob. */
  chunkSize?: number;
  /** Where chunked upload sessions are remembered, so that a killed sync resumes a blob mid-way. */
  uploadStateDir?: string;
  /** Blobs copied (and manifests fetched) in parallel; default 6, as skopeo. */
  jobs?: number;
  src?: HostOptions;
  dest?: HostOptions;
  /** Download/upload settings for both sides (env, retries, timeouts, signal). */
  fetch?: FetchOptions;
  progress?: SyncProgress;
  /** Notes for a person (platform choices, fallbacks). */
  log?: (line: string) => void;
}

export type BlobAction = 'send' | 'mount' | 'skip';

export interface BlobReport {
  digest: string;
  size: number;
  action: BlobAction;
  /** The repository a mount came from. */
  from?: string;
}

export interface ManifestReport {
  digest: string;
  mediaType: string;
  size: number;
  /** The tag or digest it is pushed as. */
  as: string;
  action: 'push' | 'skip';
}

export interface ImageReport {
  /** The source as named (`host/name:tag`, `host/name@sha256:…`). */
  source: string;
  /** What the source reference named. */
  sourceDigest: string;
  /** `host/path:tag` or `host/path@sha256:…`. */
  destination: string;
  /** What the destination now names: the source digest, unless platforms were chosen from an index. */
  digest: string;
  /** Platforms kept when an index was reduced. */
  platforms?: string[];
  /** Nothing had to be written. */
  upToDate: boolean;
  blobs: { sent: number; mounted: number; skipped: number };
  bytesSent: number;
  manifests: ManifestReport[];
  blobList: BlobReport[];
}

export interface SyncSummary {
  dryRun: boolean;
  images: ImageReport[];
  totals: { images: number; manifestsPushed: number; blobs: { sent: number; mounted: number; skipped: number }; bytesSent: number };
}

/** Chunk size used when a proxy stands between us and the destination (streamed PUTs go direct only). */
const PROXY_CHUNK_SIZE = 16 * 1024 * 1024;
/** Each parallel chunked upload holds about one chunk in memory. */
export const MAX_CHUNK_SIZE = 512 * 1024 * 1024;
/** Attempts per blob upload: transport failures start the blob again (from a fresh session). */
const BLOB_ATTEMPTS = 3;

interface Item {
  ref: ImageReference;
  /** Tag to push under (undefined: by digest). */
  tag: string | undefined;
  label: string;
}

function short(digest: string): string {
  return digest.slice(0, digest.indexOf(':') + 13);
}

function typedTagOrDigest(text: string): boolean {
  const last = text.slice(text.lastIndexOf('/') + 1);
  return last.includes(':') || last.includes('@');
}

class Syncer {
  private readonly dest: Destination;
  private readonly destHost: RegistryHost;
  private readonly blobs: BlobPusher;
  private readonly manifests: ManifestPusher;
  private readonly srcHosts = new Map<string, RegistryHost>();
  private readonly clients = new Map<string, RegistryClient>();
  /** Which destination repository holds a digest (seen or sent in this run): a mount source. */
  private readonly known = new Map<string, string>();
  /** Blob copies of this run, by `path@digest`, so that images sharing a blob send it once. */
  private readonly copies = new Map<string, Promise<{ report: BlobReport; bytes: number }>>();
  /** Manifests pushed by digest in this run (or, dry, that would be), by `path@digest`. */
  private readonly pushed = new Set<string>();
  private readonly blobLimit: Limiter;
  private readonly planLimit: Limiter;
  private readonly platforms: 'all' | readonly Platform[];
  private readonly dry: boolean;
  private readonly chunkSize: number;
  private readonly journal: UploadJournal | undefined;
  private proxyNoted = false;

  constructor(private readonly opts: SyncOptions) {
    this.dest = parseDestination(opts.destination);
    const jobs = opts.jobs ?? 6;
    this.blobLimit = limitConcurrency(jobs);
    this.planLimit = limitConcurrency(jobs);
    this.platforms = opts.platforms ?? [wantedPlatform()];
    this.dry = opts.dryRun ?? false;
    this.chunkSize = opts.chunkSize ?? 0;
    this.journal = opts.uploadStateDir !== undefined ? new UploadJournal(opts.uploadStateDir) : undefined;
    if (!Number.isSafeInteger(this.chunkSize) || this.chunkSize < 0 || this.chunkSize > MAX_CHUNK_SIZE) {
      throw new Error(`invalid chunk size ${this.chunkSize}: expected 0 (one streamed PUT) up to ${MAX_CHUNK_SIZE / 1024 / 1024} MiB (each parallel upload holds a chunk in memory)`);
    }
    const destRef = parseReference(`${this.dest.domain}/${this.dest.path ?? 'x'}`);
    this.destHost = new RegistryHost(destRef, skipUnusedCaBundles({ ...opts.dest, ...(opts.fetch ? { fetch: { ...opts.fetch, ...opts.dest?.fetch } } : {}) }));
    const actions = this.dry ? 'pull' : 'pull,push';
    this.blobs = new BlobPusher(this.destHost, actions);
    this.manifests = new ManifestPusher(this.destHost, actions);
  }

  private srcOptions(): HostOptions {
    return skipUnusedCaBundles({ ...this.opts.src, ...(this.opts.fetch ? { fetch: { ...this.opts.fetch, ...this.opts.src?.fetch } } : {}) });
  }

  private srcHost(ref: ImageReference): RegistryHost {
    let h = this.srcHosts.get(ref.domain);
    if (!h) {
      h = new RegistryHost(ref, this.srcOptions());
      this.srcHosts.set(ref.domain, h);
    }
    return h;
  }

  private client(ref: ImageReference): RegistryClient {
    let c = this.clients.get(ref.name);
    if (!c) {
      c = new RegistryClient(ref, this.srcOptions());
      this.clients.set(ref.name, c);
    }
    return c;
  }

  /** The images the source names, with the shape that decides how DEST maps them. */
  private async items(): Promise<{ shape: SourceShape; items: Item[] }> {
    const s = this.opts.source;
    const parse = (text: string): ImageReference => {
      try {
        return parseReference(text);
      } catch (err) {
        throw new Error(`source: ${(err as Error).message}`);
      }
    };
    if (s.kind === 'list') {
      return { shape: 'list', items: s.entries.map((e) => ({ ref: e.ref, tag: e.tag, label: `${e.ref.name}${e.tag !== undefined ? `:${e.tag}` : ''}@${e.ref.digest ?? ''}` })) };
    }
    const text = s.reference.replace(/^docker:\/\//, '');
    const ref = parse(text);
    if (s.kind === 'image') {
      const label = `${ref.name}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
      return { shape: 'image', items: [{ ref, tag: ref.tag, label }] };
    }
    if (typedTagOrDigest(text)) {
      throw new Error(`source '${s.reference}': with all tags, name a repository without a tag or digest`);
    }
    const tags = await listTags(this.srcHost(ref), ref.path);
    if (tags.length === 0) this.opts.log?.(`${ref.name} has no tags: nothing to copy`);
    return { shape: 'repository', items: tags.map((t) => ({ ref: parse(`${ref.name}:${t}`), tag: t, label: `${ref.name}:${t}` })) };
  }

  async run(): Promise<SyncSummary> {
    // Reach the destination while the source is being read; a failure shows up on first use.
    this.destHost.endpoint().catch(() => undefined);
    try {
      const { shape, items } = await this.items();
      const images: ImageReport[] = [];
      for (const item of items) images.push(await this.image(item, shape));
      const sum = (f: (r: ImageReport) => number): number => images.reduce((n, r) => n + f(r), 0);
      return {
        dryRun: this.dry,
        images,
        totals: {
          images: images.length,
          manifestsPushed: sum((r) => r.manifests.filter((m) => m.action === 'push').length),
          blobs: { sent: sum((r) => r.blobs.sent), mounted: sum((r) => r.blobs.mounted), skipped: sum((r) => r.blobs.skipped) },
          bytesSent: sum((r) => r.bytesSent),
        },
      };
    } finally {
      await this.destHost.close();
      await Promise.all([...this.srcHosts.values()].map((h) => h.close()));
    }
  }

  private async image(item: Item, shape: SourceShape): Promise<ImageReport> {
    const target = targetFor(item.ref, item.tag, this.dest, shape);
    const client = this.client(item.ref);
    // What the destination tag names now is asked while the source is read.
    const byTag = target.tag !== undefined ? this.manifests.current(target.ref.path, target.tag) : undefined;
    byTag?.catch(() => undefined);
    const plan = await planSource(client, item.ref.manifestRef, this.platforms, this.planLimit);
    const path = target.ref.path;
    const top = plan.top;
    const topRef = target.tag ?? top.digest;
    const destination = `${target.ref.name}${target.tag !== undefined ? `:${target.tag}` : `@${top.digest}`}`;
    if (plan.platforms) {
      this.opts.log?.(`${item.label} is a multi-platform index; copying ${plan.platforms.join(', ')} only, so ${destination} names ${top.digest}, not ${plan.sourceDigest} (use --all-platforms to keep the index)`);
    }
    const nodes = manifestsBottomUp(top);
    const report: ImageReport = {
      source: item.label, sourceDigest: plan.sourceDigest, destination, digest: top.digest,
      ...(plan.platforms ? { platforms: plan.platforms } : {}),
      upToDate: false, blobs: { sent: 0, mounted: 0, skipped: 0 }, bytesSent: 0, manifests: [], blobList: [],
    };
    const asOf = (n: ManifestNode): string => (n === top ? topRef : n.digest);
    const manifestReport = (n: ManifestNode, action: 'push' | 'skip'): ManifestReport => ({ digest: n.digest, mediaType: n.mediaType, size: n.bytes.length, as: asOf(n), action });

    // Already there under the same name: everything it references is there too.
    if (await (byTag ?? this.manifests.current(path, topRef, top.mediaType)) === top.digest) {
      report.upToDate = true;
      const seen = new Set<string>();
      for (const n of nodes) {
        report.manifests.push(manifestReport(n, 'skip'));
        for (const b of n.blobs) {
          if (seen.has(b.digest)) continue;
          seen.add(b.digest);
          this.remember(b.digest, path);
          report.blobList.push({ digest: b.digest, size: b.size, action: 'skip' });
        }
      }
      report.blobs.skipped = report.blobList.length;
      return report;
    }

    // Manifests present by digest bring their blobs (and children) with them.
    const present = new Set<string>();
    await Promise.all(nodes.map((n) => this.planLimit(async () => {
      if (n === top && target.tag === undefined) return; // just asked
      if (await this.manifests.current(path, n.digest, n.mediaType) === n.digest) present.add(n.digest);
    })));
    const covered = (n: ManifestNode): boolean => present.has(n.digest);
    const needed = new Map<string, Descriptor>();
    const skippedByManifest = new Map<string, Descriptor>();
    for (const n of nodes) {
      for (const b of n.blobs) (covered(n) ? skippedByManifest : needed).set(b.digest, b);
    }
    for (const d of needed.keys()) skippedByManifest.delete(d);

    const results = await Promise.all([...needed.values()].map((b) => this.copyBlob(b, path, item.ref, client)));
    for (const b of skippedByManifest.values()) {
      this.remember(b.digest, path);
      results.push({ report: { digest: b.digest, size: b.size, action: 'skip' }, bytes: 0 });
    }
    for (const { report: r, bytes } of results) {
      report.blobList.push(r);
      report.bytesSent += bytes;
      if (r.action === 'send') report.blobs.sent++;
      else if (r.action === 'mount') report.blobs.mounted++;
      else report.blobs.skipped++;
    }

    // Children first (by digest), then the top by its tag (or digest).
    for (const n of nodes) {
      const byDigest = n !== top || target.tag === undefined;
      const key = `${path}@${n.digest}`;
      const skip = byDigest && (present.has(n.digest) || this.pushed.has(key));
      report.manifests.push(manifestReport(n, skip ? 'skip' : 'push'));
      if (skip) continue;
      if (byDigest) this.pushed.add(key);
      if (!this.dry) await this.manifests.put(path, asOf(n), n);
    }
    if (!this.dry) {
      const back = await this.manifests.fetch(path, topRef, top.mediaType);
      if (back.digest !== top.digest) {
        throw new RegistryError(`${destination}: reading it back gave ${back.digest}, expected ${top.digest}`, 'DIGEST_MISMATCH');
      }
    }
    report.upToDate = report.manifests.every((m) => m.action === 'skip') && report.blobList.every((b) => b.action === 'skip');
    return report;
  }

  private remember(digest: string, path: string): void {
    if (!this.known.has(digest)) this.known.set(digest, path);
  }

  /** Same registry → mount from the source repository; else from a repository filled earlier in this run. */
  private mountSource(digest: string, path: string, src: ImageReference): string | undefined {
    if (src.domain === this.dest.domain && src.path !== path) return src.path;
    const other = this.known.get(digest);
    return other !== undefined && other !== path ? other : undefined;
  }

  private copyBlob(d: Descriptor, path: string, src: ImageReference, client: RegistryClient): Promise<{ report: BlobReport; bytes: number }> {
    const key = `${path}@${d.digest}`;
    const earlier = this.copies.get(key);
    if (earlier) return earlier.then(() => ({ report: { digest: d.digest, size: d.size, action: 'skip' as const }, bytes: 0 }));
    const p = this.blobLimit(() => this.copyBlobNow({ digest: d.digest, size: d.size }, path, src, client));
    this.copies.set(key, p);
    return p;
  }

  private async copyBlobNow(blob: Blob, path: string, src: ImageReference, client: RegistryClient): Promise<{ report: BlobReport; bytes: number }> {
    const base = { digest: blob.digest, size: blob.size };
    if (await this.blobs.exists(path, blob)) {
      this.remember(blob.digest, path);
      return { report: { ...base, action: 'skip' }, bytes: 0 };
    }
    const from = this.mountSource(blob.digest, path, src);
    if (this.dry) return { report: { ...base, action: from ? 'mount' : 'send', ...(from ? { from } : {}) }, bytes: 0 };
    let session: Session | undefined;
    if (from) {
      const r = await this.blobs.mount(path, blob, from);
      if (r === 'mounted') {
        this.remember(blob.digest, path);
        return { report: { ...base, action: 'mount', from }, bytes: 0 };
      }
      session = r;
    }
    const bytes = await this.upload(blob, path, client, session);
    if (!await this.blobs.exists(path, blob)) {
      throw new RegistryError(`blob ${blob.digest} in ${this.dest.domain}/${path}: not there (or not ${blob.size} bytes) after its upload`, 'HTTP');
    }
    this.remember(blob.digest, path);
    return { report: { ...base, action: 'send' }, bytes };
  }

  /** Chunk size for uploads to the destination: 0 = one streamed PUT (only without a proxy). */
  private async chunkFor(): Promise<number> {
    if (this.chunkSize > 0) return this.chunkSize;
    if (this.destHost.stream.canStream(new URL(await this.destHost.endpoint()))) return 0;
    if (!this.proxyNoted) {
      this.proxyNoted = true;
      this.opts.log?.(`a proxy is set for ${this.dest.domain}: uploading in ${PROXY_CHUNK_SIZE / 1024 / 1024} MiB chunks through it`);
    }
    return PROXY_CHUNK_SIZE;
  }

  /** A session an earlier (killed) run left for this blob, with what it holds; forgotten if unusable. */
  private async savedSession(path: string, blob: Blob): Promise<{ session: Session; from: number } | undefined> {
    const url = await this.journal?.get(this.dest.domain, path, blob.digest);
    if (!url) return undefined;
    const st = await this.blobs.status(path, url, `upload of blob ${blob.digest}`).catch(() => undefined);
    if (st && st.received <= blob.size) return { session: { url: st.url }, from: st.received };
    await this.journal?.drop(this.dest.domain, path, blob.digest);
    return undefined;
  }

  /** Uploads one blob, starting it over (new session, new download) after a transport failure. Returns bytes sent. */
  private async upload(blob: Blob, path: string, client: RegistryClient, first: Session | undefined): Promise<number> {
    const id = `${path}@${blob.digest}`;
    const progress = this.opts.progress;
    const journal = this.journal;
    const chunk = await this.chunkFor();
    progress?.start(id, `${short(blob.digest)} → ${path}`, blob.size);
    let sent = 0;
    let session = first;
    try {
      for (let attempt = 1; ; attempt++) {
        let from = 0;
        if (!session && chunk > 0) {
          const saved = await this.savedSession(path, blob);
          if (saved) {
            ({ session, from } = saved);
            this.opts.log?.(`${id}: resuming an interrupted upload at byte ${from} of ${blob.size}`);
          }
        }
        session ??= await this.blobs.start(path, blob);
        let now = 0;
        const onProgress = (n: number): void => {
          if (chunk === 0) now = n;
          progress?.update(id, n, blob.size);
        };
        try {
          const source = await client.openBlob({ digest: blob.digest, size: blob.size }, { onProgress });
          if (chunk === 0) {
            await this.blobs.putWhole(path, session, blob, source);
          } else {
            const onChunk = async (url: URL, offset: number): Promise<void> => {
              now = offset - from;
              await journal?.set(this.dest.domain, path, blob.digest, url);
            };
            await this.blobs.putChunked(path, session, blob, source, chunk, { from, onChunk });
          }
          sent += now;
          await journal?.drop(this.dest.domain, path, blob.digest);
          return sent;
        } catch (err) {
          sent += now;
          const s = session;
          session = undefined;
          // A commit whose answer was lost still counts.
          if (retryable(err) && await this.blobs.exists(path, blob).catch(() => false)) {
            await journal?.drop(this.dest.domain, path, blob.digest);
            return sent;
          }
          await this.blobs.cancel(path, s);
          await journal?.drop(this.dest.domain, path, blob.digest);
          if (attempt >= BLOB_ATTEMPTS || !retryable(err)) throw err;
        }
      }
    } finally {
      progress?.finish(id);
    }
  }
}

/** Copies the source's images into the destination registry; see SyncOptions. */
export async function syncImages(opts: SyncOptions): Promise<SyncSummary> {
  return new Syncer(opts).run();
}
