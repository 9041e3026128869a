/**
 * What one source image amounts to: its manifests (exact bytes, children before parents) and
 * the blobs they need. With all platforms an index is kept byte for byte. With selected
 * platforms it cannot be: one platform → the destination gets that platform's manifest alone
 * (as `skopeo copy` without --all); several → a new index listing only those entries, with
 * its own digest.
 */
import { createHash } from 'node:crypto';
import {
  RegistryError, availablePlatforms, formatPlatform, isImageManifestMediaType, normalizePlatform, selectPlatform,
  type Descriptor, type FetchedManifest, type Limiter, type Platform, type RegistryClient,
} from '../registry/index.js';

export interface ManifestNode {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  /** Config and layers of an image manifest (non-distributable layers left out); none for an index. */
  blobs: Descriptor[];
  /** An index's manifests, which must reach the destination before it. */
  children: ManifestNode[];
  /** The platform of an index entry, normalised (`linux/arm/v7`). */
  platform?: string;
}

export interface SourcePlan {
  /** What the destination tag (or digest) will point to. */
  top: ManifestNode;
  /** Digest of what the source reference named (differs from top.digest when platforms were chosen). */
  sourceDigest: string;
  sourceMediaType: string;
  /** The platforms kept when an index was reduced; undefined when the source was kept whole. */
  platforms: string[] | undefined;
}

/** Indexes nested deeper than this are treated as a loop. */
const MAX_DEPTH = 4;

/** Layers that registries do not hold (Windows base layers): they stay where their URLs point. */
export function isNonDistributable(mediaType: string): boolean {
  return /\.foreign\.|nondistributable/.test(mediaType);
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function entryPlatform(e: Descriptor): string | undefined {
  return e.platform ? formatPlatform(normalizePlatform(e.platform)) : undefined;
}

async function node(client: RegistryClient, m: FetchedManifest, limit: Limiter, depth: number, platform?: string): Promise<ManifestNode> {
  const base = { digest: m.digest, mediaType: m.mediaType, bytes: m.bytes, ...(platform !== undefined ? { platform } : {}) };
  if (m.manifest.kind === 'manifest') {
    const blobs = [m.manifest.config, ...m.manifest.layers.filter((l) => !isNonDistributable(l.mediaType))];
    return { ...base, blobs, children: [] };
  }
  if (depth >= MAX_DEPTH) throw new RegistryError(`index ${m.digest} of ${client.ref.name}: indexes nested more than ${MAX_DEPTH} deep`, 'BAD_MANIFEST');
  const children = await Promise.all(m.manifest.manifests.map(async (e) => {
    const child = await limit(() => client.getManifest(e.digest, { size: e.size, mediaType: e.mediaType }));
    return node(client, child, limit, depth + 1, entryPlatform(e));
  }));
  return { ...base, blobs: [], children };
}

/**
 * Fetches the source's manifests (verified by digest) and decides what goes to the
 * destination. `platforms` is 'all' or the platforms wanted (normalised).
 */
export async function planSource(client: RegistryClient, reference: string, platforms: 'all' | readonly Platform[], limit: Limiter): Promise<SourcePlan> {
  const top = await client.getManifest(reference);
  const whole = { sourceDigest: top.digest, sourceMediaType: top.mediaType, platforms: undefined };
  if (top.manifest.kind === 'manifest' || platforms === 'all') return { top: await node(client, top, limit, 0), ...whole };

  const entries = top.manifest.manifests;
  const chosen: Descriptor[] = [];
  for (const p of platforms) {
    const e = selectPlatform(entries, p, (d) => isImageManifestMediaType(d.mediaType));
    if (!e) {
      const avail = availablePlatforms(entries);
      throw new RegistryError(`${client.ref.name}@${top.digest}: no image for platform ${formatPlatform(p)}; available: ${avail.length ? avail.join(', ') : 'none'} (or use --all-platforms)`, 'NO_PLATFORM');
    }
    if (!chosen.includes(e)) chosen.push(e);
  }
  const children = await Promise.all(chosen.map(async (e) => {
    const child = await limit(() => client.getManifest(e.digest, { size: e.size, mediaType: e.mediaType }));
    return node(client, child, limit, 1, entryPlatform(e));
  }));
  const label = (c: ManifestNode): string => c.platform ?? '(no platform)';
  if (children.length === 1) return { top: children[0]!, sourceDigest: top.digest, sourceMediaType: top.mediaType, platforms: [label(children[0]!)] };

  // Several platforms: the same index document with only the chosen entries, in index order.
  const doc = JSON.parse(top.bytes.toString('utf8')) as { manifests: unknown[] } & Record<string, unknown>;
  const keep = new Set(chosen.map((e) => e.digest));
  doc.manifests = doc.manifests.filter((m) => typeof m === 'object' && m !== null && keep.has(String((m as { digest?: unknown }).digest)));
  const bytes = Buffer.from(JSON.stringify(doc));
  const ordered = [...children].sort((a, b) => entries.findIndex((e) => e.digest === a.digest) - entries.findIndex((e) => e.digest === b.digest));
  return {
    top: { digest: sha256(bytes), mediaType: top.mediaType, bytes, blobs: [], children: ordered },
    sourceDigest: top.digest, sourceMediaType: top.mediaType, platforms: ordered.map(label),
  };
}

/** Every manifest under `top`, children before their index, each digest once. */
export function manifestsBottomUp(top: ManifestNode): ManifestNode[] {
  const out: ManifestNode[] = [];
  const seen = new Set<string>();
  const visit = (n: ManifestNode): void => {
    for (const c of n.children) visit(c);
    if (!seen.has(n.digest)) {
      seen.add(n.digest);
      out.push(n);
    }
  };
  visit(top);
  return out;
}
