import { printable } from '../text/index.js';
/**
 * Image references, parsed and normalised exactly as Docker's distribution/reference does
 * (ParseNormalizedNamed + familiarizeName), so that names, pins and RepoTags agree with
 * docker, skopeo and nixpkgs pullImage. Pure: no I/O.
 *
 * Grammar (distribution/reference/reference.go):
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [domain "/"] path-component ["/" path-component]*
 *   domain    := host [":" port]   (host: DNS name, IPv4, or [IPv6])
 *   path-component := [a-z0-9]+ ( ([._]|__|-+) [a-z0-9]+ )*
 *   tag       := [\w][\w.-]{0,127}
 *
 * A tag beside a digest (`name:tag@sha256:…`): docker pull and ParseDockerRef drop the tag and
 * pull by digest; skopeo 1.9 refuses such references outright ("Docker references with both a
 * tag and digest are currently not supported"). We follow docker: the digest decides what is
 * fetched, and the tag is kept only for display (e.g. the archive's RepoTags).
 */

export const DEFAULT_DOMAIN = 'docker.io';
/** Where the Docker Hub registry API actually lives. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** The key docker login writes for Docker Hub in ~/.docker/config.json. */
export const DOCKER_HUB_CREDENTIALS_KEY = 'https://index.docker.io/v1/';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library';
export const DEFAULT_TAG = 'latest';
/** distribution/reference NameTotalLengthMax. */
const NAME_MAX = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const DOMAIN = new RegExp(`^(?:${IPV6}|${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*)(?::[0-9]+)?$`);
const TAG = /^[\w][\w.-]{0,127}$/;
const IDENTIFIER = /^[a-f0-9]{64}$/;
/** The digest algorithms we can verify, with their hex lengths (go-digest's set minus sha384). */
const DIGEST_HEX: Readonly<Record<string, number>> = { sha256: 64, sha512: 128 };

export interface ImageReference {
  /** Registry as written in references, normalised (`docker.io`, `localhost:5000`, `[::1]:5000`). */
  readonly domain: string;
  /** Repository path inside the registry (`library/ubuntu`). */
  readonly path: string;
  /** Explicit or defaulted tag; when a digest is present this is display only (may be undefined). */
  readonly tag: string | undefined;
  /** `sha256:<hex>` when the reference pins a digest: this is what gets fetched. */
  readonly digest: string | undefined;
  /** Fully normalised name: `docker.io/library/ubuntu`. */
  readonly name: string;
  /** Familiar name as docker prints it: `ubuntu`, `foo/bar`, `localhost:5000/x`. */
  readonly familiarName: string;
  /** Host the HTTP API is served from (`registry-1.docker.io` for Docker Hub). */
  readonly apiHost: string;
  /** Key under which docker login stores credentials for this registry. */
  readonly credentialsKey: string;
  /** What to ask the registry for: the digest if any, else the tag. */
  readonly manifestRef: string;
}

export class ReferenceError extends Error {
  constructor(input: string, reason: string) {
    super(`invalid image reference '${printable(input, 1000)}': ${reason}`);
    this.name = 'ReferenceError';
  }
}

/** Whether the text before the first `/` names a registry rather than a Docker Hub namespace. */
function isDomainPart(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost';
}

function splitDockerDomain(name: string): { domain: string; remainder: string } {
  const i = name.indexOf('/');
  let domain: string;
  let remainder: string;
  if (i === -1 || !isDomainPart(name.slice(0, i))) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = name.slice(0, i);
    remainder = name.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = `${OFFICIAL_REPO_PREFIX}/${remainder}`;
  return { domain, remainder };
}

/** Checks a digest as go-digest does: known algorithm, lowercase hex of the right length. */
export function validateDigest(digest: string, where = digest): string {
  const colon = digest.indexOf(':');
  if (colon <= 0) throw new Error(`invalid digest '${printable(where)}': expected <algorithm>:<hex>`);
  const algo = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const len = DIGEST_HEX[algo];
  if (len === undefined) throw new Error(`invalid digest '${printable(where)}': unsupported algorithm '${printable(algo)}' (sha256 or sha512)`);
  if (hex.length !== len || !/^[a-f0-9]+$/.test(hex)) {
    throw new Error(`invalid digest '${printable(where)}': ${algo} needs ${len} lowercase hex digits`);
  }
  return digest;
}

function familiarize(domain: string, path: string): string {
  if (domain !== DEFAULT_DOMAIN) return `${domain}/${path}`;
  const parts = path.split('/');
  return parts.length === 2 && parts[0] === OFFICIAL_REPO_PREFIX ? parts[1]! : path;
}

function make(domain: string, path: string, tag: string | undefined, digest: string | undefined): ImageReference {
  const name = `${domain}/${path}`;
  return {
    domain,
    path,
    tag,
    digest,
    name,
    familiarName: familiarize(domain, path),
    apiHost: domain === DEFAULT_DOMAIN ? DOCKER_HUB_API_HOST : domain,
    credentialsKey: domain === DEFAULT_DOMAIN ? DOCKER_HUB_CREDENTIALS_KEY : domain,
    manifestRef: digest ?? tag ?? DEFAULT_TAG,
  };
}

/**
 * Parses a reference the way `docker pull` does. Without tag or digest the tag is `latest`.
 * Throws a ReferenceError naming the input and the rule it breaks.
 */
export function parseReference(input: string): ImageReference {
  const s = input;
  if (s === '') throw new ReferenceError(input, 'empty');
  if (IDENTIFIER.test(s)) {
    throw new ReferenceError(input, 'cannot specify 64-byte hexadecimal strings (an image ID is not a repository name)');
  }
  if (/\s/.test(s)) throw new ReferenceError(input, 'contains whitespace');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) throw new ReferenceError(input, 'a reference has no URL scheme (drop the "scheme://")');

  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    const d = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      digest = validateDigest(d);
    } catch (err) {
      throw new ReferenceError(input, (err as Error).message);
    }
  }

  const { domain, remainder } = splitDockerDomain(rest);
  // A tag is whatever follows the last ':' after the last '/', so a port stays with the domain.
  let pathPart = remainder;
  let tag: string | undefined;
  const colon = remainder.lastIndexOf(':');
  if (colon > remainder.lastIndexOf('/')) {
    tag = remainder.slice(colon + 1);
    pathPart = remainder.slice(0, colon);
    if (!TAG.test(tag)) {
      throw new ReferenceError(input, `invalid tag '${printable(tag)}': tags are 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'`);
    }
  }

  if (!DOMAIN.test(domain)) throw new ReferenceError(input, `invalid registry host '${printable(domain)}'`);
  if (pathPart.toLowerCase() !== pathPart) throw new ReferenceError(input, 'repository name must be lowercase');
  if (pathPart === '') throw new ReferenceError(input, 'repository name must have at least one component');
  for (const component of pathPart.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      throw new ReferenceError(
        input,
        component === ''
          ? 'empty path component (doubled or trailing "/")'
          : `invalid path component '${printable(component)}': lowercase letters and digits, separated by '.', '_', '__' or '-'`,
      );
    }
  }
  const full = `${domain}/${pathPart}`;
  if (full.length > NAME_MAX) throw new ReferenceError(input, `repository name must not be more than ${NAME_MAX} characters`);
  if (domain.startsWith('[') && !isValidIpv6(domain)) throw new ReferenceError(input, `invalid registry host '${printable(domain)}'`);

  return make(domain, pathPart, digest === undefined ? tag ?? DEFAULT_TAG : tag, digest);
}

function isValidIpv6(domain: string): boolean {
  const m = /^\[([^\]]+)\]/.exec(domain);
  if (!m) return false;
  try {
    new URL(`http://[${m[1]}]/`);
    return true;
  } catch {
    return false;
  }
}

/** A copy of `ref` pinned to `digest` (the tag is kept for display). */
export function withDigest(ref: ImageReference, digest: string): ImageReference {
  return make(ref.domain, ref.path, ref.tag, validateDigest(digest));
}

/** `docker.io/library/ubuntu:latest`, `…@sha256:…` or `…:tag@sha256:…` — the fully normalised form. */
export function formatReference(ref: ImageReference, familiar = false): string {
  const base = familiar ? ref.familiarName : ref.name;
  return `${base}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}
