import { parseHash } from '../hash/index.js';
import { pullImageStoreName } from '../builders/index.js';
import { makeFixedOutputPath } from '../store/index.js';
import type { BuildPin, ImagePin, LockFile, UrlPin } from './lock-file.js';
import type { NixPin } from './nix-pins.js';

/** One thing to audit, with where it came from (for the report). */
export type AuditEntry =
  | { kind: 'image'; label: string; origin: string; pin: ImagePin; notes: string[] }
  | { kind: 'url'; label: string; origin: string; pin: UrlPin; notes: string[] }
  | { kind: 'build'; label: string; origin: string; pin: BuildPin; notes: string[] }
  /** A pin that cannot be audited as written (computed attributes): reported, never skipped quietly. */
  | { kind: 'unsupported'; label: string; origin: string; reason: string };

export function imageLabel(p: ImagePin): string {
  return `${p.imageName}${p.fromTag ? `:${p.fromTag}` : ''}@${p.imageDigest.slice(0, 19)}…`;
}

/** The entries of a lock file, in its (sorted) order. */
export function entriesFromLock(lock: LockFile, file: string): AuditEntry[] {
  return [
    ...lock.images.map((pin, i): AuditEntry => ({ kind: 'image', label: imageLabel(pin), origin: `${file}: images[${i}]`, pin, notes: [] })),
    ...lock.urls.map((pin, i): AuditEntry => ({ kind: 'url', label: pin.url, origin: `${file}: urls[${i}]`, pin, notes: [] })),
    ...lock.builds.map((pin, i): AuditEntry => ({ kind: 'build', label: pin.spec, origin: `${file}: builds[${i}]`, pin, notes: [] })),
  ];
}

/** Attributes without which the pinned store path cannot be known. */
const ESSENTIAL = new Set(['imageName', 'imageDigest', 'sha256', 'hash', 'finalImageName', 'finalImageTag', 'name']);

/**
 * nixpkgs pullImage sets as audit entries, with pullImage's defaults (finalImageName =
 * imageName, finalImageTag = "latest", os = "linux", arch = the host's). A computed essential
 * attribute makes the entry unsupported; a computed platform attribute is noted and the host's
 * platform used for the drift check (the digest pins the platform's manifest anyway).
 */
export function entriesFromNixPins(pins: readonly NixPin[], hostArch: string, storeDir: string): AuditEntry[] {
  return pins.map((p): AuditEntry => {
    const origin = `${p.file}:${p.line}`;
    const a = p.attrs;
    const label = typeof a.imageName === 'string' ? a.imageName : `pullImage at ${origin}`;
    const blocking = p.unsupported.filter((u) => ESSENTIAL.has(u.attr));
    if (blocking.length > 0) {
      return { kind: 'unsupported', label, origin, reason: blocking.map((u) => `${u.attr} (line ${u.line}): ${u.reason}`).join('; ') };
    }
    const str = (k: 'imageName' | 'imageDigest' | 'sha256' | 'hash' | 'finalImageName' | 'finalImageTag' | 'os' | 'arch' | 'variant' | 'name'): string | undefined => {
      const v = a[k];
      return typeof v === 'string' ? v : undefined;
    };
    const imageName = str('imageName');
    const imageDigest = str('imageDigest');
    const hashText = str('hash') ?? str('sha256');
    if (!imageName || !imageDigest || !hashText) {
      const missing = [!imageName && 'imageName', !imageDigest && 'imageDigest', !hashText && 'sha256 or hash'].filter(Boolean).join(', ');
      return { kind: 'unsupported', label, origin, reason: `missing ${missing}` };
    }
    let hash;
    try {
      hash = parseHash(hashText, 'sha256');
    } catch (e) {
      return { kind: 'unsupported', label, origin, reason: `${str('hash') ? 'hash' : 'sha256'}: ${(e as Error).message}` };
    }
    if (!/^sha256:[0-9a-f]{64}$/.test(imageDigest)) return { kind: 'unsupported', label, origin, reason: `imageDigest: expected sha256:<64 hex digits>, got '${imageDigest}'` };
    const finalImageName = str('finalImageName') ?? imageName;
    const finalImageTag = str('finalImageTag') ?? 'latest';
    const name = str('name') ?? pullImageStoreName(finalImageName, finalImageTag, 'docker-archive');
    const notes = p.unsupported.map((u) => `${u.attr} is not a literal (line ${u.line}): ${ESSENTIAL.has(u.attr) ? '' : "the host's platform is used for the drift check"}`);
    const variant = str('variant');
    const pin: ImagePin = {
      imageName, imageDigest, hash: hash.sri, finalImageName, finalImageTag,
      // nix-prefetch-docker writes the tag it resolved as finalImageTag: the tag to watch for drift.
      fromTag: finalImageTag,
      os: str('os') ?? 'linux', arch: str('arch') ?? hostArch,
      ...(variant ? { variant } : {}),
      ...(a.tlsVerify === false ? { tlsVerify: false } : {}),
      ...(str('name') ? { name } : {}),
      storePath: makeFixedOutputPath('flat', hash, name, { storeDir }),
    };
    return { kind: 'image', label: imageLabel(pin), origin, pin, notes };
  });
}
