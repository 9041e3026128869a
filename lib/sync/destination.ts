/**
 * Where a synced image goes. Pure: no I/O.
 *
 * DEST is `host[:port]`, `host[:port]/path` or (one image only) `host[:port]/path:tag`:
 * - `host` alone: every image keeps its repository path (`src/a/b:1` → `host/a/b:1`).
 * - `host/path` with one source repository (one image, or `--all-tags`): `path` is the
 *   destination repository itself, as `skopeo copy` reads it (`src/a/b:1` → `host/path:1`).
 * - `host/path` with a `--list` of images (many repositories): `path` is a prefix that the
 *   source path is appended to (`src/a/b@d` → `host/path/a/b@d`), so names never collide.
 * - `host/path:tag`: one image, pushed under that tag.
 * Tags are kept; an image given by digest only is pushed by digest (untagged).
 */
import { parseReference, type ImageReference } from '../registry/index.js';

export interface Destination {
  /** `127.0.0.1:5000`, `registry.example`, `docker.io`. */
  domain: string;
  /** Repository path or prefix after the host; undefined for a bare host. */
  path: string | undefined;
  /** A tag given in DEST (one image only). */
  tag: string | undefined;
  /** DEST as written, for messages. */
  text: string;
}

/** How many repositories the source names: DEST's path is the repository (one) or a prefix (many). */
export type SourceShape = 'image' | 'repository' | 'list';

function looksLikeHost(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost';
}

/** Parses DEST; throws a one-line error naming it and the rule it breaks. */
export function parseDestination(text: string): Destination {
  const raw = text.replace(/^docker:\/\//, '').replace(/\/+$/, '');
  const bad = (why: string): Error => new Error(`invalid destination '${text}': ${why}`);
  if (raw === '') throw bad('empty');
  if (raw.includes('@')) throw bad('a destination cannot name a digest (digests are kept from the source)');
  const slash = raw.indexOf('/');
  const host = slash === -1 ? raw : raw.slice(0, slash);
  if (!looksLikeHost(host)) {
    throw bad(`it must start with a registry host (a name with '.' or ':', or localhost), e.g. registry.example:5000/prefix`);
  }
  if (slash === -1) {
    // Validate the host through the reference grammar with a throwaway path.
    try {
      parseReference(`${host}/x`);
    } catch (err) {
      throw bad((err as Error).message.replace(/^invalid image reference '[^']*': /, ''));
    }
    return { domain: host, path: undefined, tag: undefined, text };
  }
  let ref: ImageReference;
  try {
    ref = parseReference(raw);
  } catch (err) {
    throw bad((err as Error).message.replace(/^invalid image reference '[^']*': /, ''));
  }
  const rest = raw.slice(slash + 1);
  const hasTag = rest.lastIndexOf(':') > rest.lastIndexOf('/');
  return { domain: ref.domain, path: ref.path, tag: hasTag ? ref.tag : undefined, text };
}

/** The destination repository and tag for one source image. */
export interface Target {
  /** A reference in the destination registry (tag set when the image is pushed by tag). */
  ref: ImageReference;
  /** The tag to push, or undefined to push by digest only. */
  tag: string | undefined;
}

/**
 * Maps a source image to its destination. `sourceTag` is the tag the source was named by
 * (undefined for a digest-only source).
 */
export function targetFor(source: ImageReference, sourceTag: string | undefined, dest: Destination, shape: SourceShape): Target {
  if (dest.tag !== undefined && shape !== 'image') {
    throw new Error(`invalid destination '${dest.text}': a tag in the destination is only for a single image`);
  }
  let path: string;
  if (dest.path === undefined) path = source.path;
  else if (shape === 'list') path = `${dest.path}/${source.path}`;
  else path = dest.path;
  const tag = dest.tag ?? sourceTag;
  const text = `${dest.domain}/${path}${tag !== undefined ? `:${tag}` : ''}`;
  let ref: ImageReference;
  try {
    ref = parseReference(text);
  } catch (err) {
    throw new Error(`destination for ${source.name}: ${(err as Error).message}`);
  }
  return { ref, tag };
}
