// The pure reference parser alone, not the registry's face (client, auth, …): planning a build on a
// pinned base needs the pull's store name, and an unchanged build must start fast.
import { parseReference, type ImageReference } from '../registry/reference.js';

/** The names nixpkgs' pullImage derives from its arguments. */
export interface ImageNames {
  reference: ImageReference;
  /** The repository as the user wrote it (pullImage's imageName), without tag or digest. */
  imageName: string;
  finalImageName: string;
  finalImageTag: string;
}

/** Splits what the user wrote into pullImage's imageName and the tag/digest. */
function writtenName(ref: string): string {
  const at = ref.indexOf('@');
  const noDigest = at >= 0 ? ref.slice(0, at) : ref;
  const lastSlash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > lastSlash ? noDigest.slice(0, colon) : noDigest;
}

export function imageNames(ref: string, finalImageName?: string, finalImageTag?: string): ImageNames {
  const reference = parseReference(ref);
  const imageName = writtenName(ref);
  return {
    reference,
    imageName,
    finalImageName: finalImageName ?? imageName,
    finalImageTag: finalImageTag ?? reference.tag ?? 'latest',
  };
}

/** nixpkgs: `fixName "docker-image-${finalImageName}-${finalImageTag}.tar"` ('/' and ':' become '-'). */
export function pullImageStoreName(finalImageName: string, finalImageTag: string, format: 'docker-archive' | 'oci'): string {
  const base = `docker-image-${finalImageName}-${finalImageTag}`.replace(/[/:]/g, '-');
  return format === 'docker-archive' ? `${base}.tar` : `${base}-oci`;
}
