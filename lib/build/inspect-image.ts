// What `fetch-image inspect` shows of an image on disk: its config and, per layer, diff_id, size
// and file count. Reads tar headers only (layer data is jumped over).
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { tarMembers } from '../image/index.js';
import { openBaseArchive } from './base-image.js';
import type { Json } from './image-types.js';

export interface InspectedLayer {
  diffId: string;
  /** Bytes of the layer as stored (uncompressed tar in a docker-archive, the blob in an OCI layout). */
  size: number;
  /** Entries of the layer tar; null for compressed OCI blobs (not decompressed to count). */
  files: number | null;
}

export interface InspectedImage {
  format: 'docker-archive' | 'oci';
  repoTags: string[];
  config: Json;
  layers: InspectedLayer[];
}

async function inspectDockerArchive(file: string): Promise<InspectedImage> {
  const archive = await openBaseArchive(file);
  try {
    const fh = await open(archive.path, 'r');
    try {
      const layers: InspectedLayer[] = [];
      for (const l of archive.layers) {
        let files = 0;
        for await (const _ of tarMembers(fh, l.member.dataOffset, l.member.size, `${file}: ${l.name}`)) files++;
        layers.push({ diffId: l.diffId, size: l.member.size, files });
      }
      return { format: 'docker-archive', repoTags: archive.repoTags, config: archive.configJson, layers };
    } finally {
      await fh.close();
    }
  } finally {
    await archive.close();
  }
}

interface Descriptor { digest: string; size: number; mediaType?: string; annotations?: { [key: string]: string } }

async function inspectOciLayout(dir: string): Promise<InspectedImage> {
  const blob = (d: Descriptor) => join(dir, 'blobs', ...d.digest.split(':'));
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const top = index.manifests[0];
  if (!top) throw new Error(`${dir}: index.json lists no image`);
  const manifest = JSON.parse(await readFile(blob(top), 'utf8')) as { config: Descriptor; layers: Descriptor[] };
  const config = JSON.parse(await readFile(blob(manifest.config), 'utf8')) as { rootfs?: { diff_ids?: string[] } } & { [key: string]: Json };
  const diffIds = config.rootfs?.diff_ids ?? [];
  const layers: InspectedLayer[] = [];
  for (const [i, d] of manifest.layers.entries()) {
    const plain = d.mediaType === undefined || d.mediaType.endsWith('.tar');
    let files: number | null = null;
    if (plain) {
      const fh = await open(blob(d), 'r');
      try {
        files = 0;
        for await (const _ of tarMembers(fh, 0, (await stat(blob(d))).size, `${dir}: layer ${i}`)) files++;
      } finally {
        await fh.close();
      }
    }
    layers.push({ diffId: diffIds[i] ?? '', size: d.size, files });
  }
  const tags = index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).filter((t): t is string => t !== undefined);
  return { format: 'oci', repoTags: tags, config, layers };
}

/** A docker-archive file (compressed or not) or an OCI layout directory. */
export async function inspectImage(path: string): Promise<InspectedImage> {
  return (await stat(path)).isDirectory() ? inspectOciLayout(path) : inspectDockerArchive(path);
}
