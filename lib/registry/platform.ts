/**
 * Platforms (os/architecture/variant) and the choice of one entry from an image index, as
 * skopeo (containers/image ChooseInstance + WantedPlatforms) does it, with containerd's
 * normalisation applied to both sides so that `aarch64`, `arm64/v8` and `arm64` are one thing.
 * Pure: no I/O.
 */
import { endianness } from 'node:os';

export interface Platform {
  os: string;
  architecture: string;
  /** '' when none. */
  variant: string;
}

/** What a caller may ask for; missing fields default to the host (linux + process.arch). */
export interface PlatformWanted {
  os?: string;
  /** `arch` is accepted as an alias, and a combined `arm/v7` form too. */
  arch?: string;
  architecture?: string;
  variant?: string;
}

/** containerd platforms.normalizeOS. */
function normalizeOs(os: string): string {
  const o = os.toLowerCase();
  return o === 'macos' ? 'darwin' : o;
}

/** containerd platforms.normalizeArch (plus the armhf/armel aliases Debian uses). */
function normalizeArch(arch: string, variant: string): { architecture: string; variant: string } {
  let a = arch.toLowerCase();
  let v = variant.toLowerCase();
  switch (a) {
    case 'i386':
    case 'i686':
    case 'x86':
    case 'ia32':
      a = '386';
      v = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'x64':
    case 'amd64':
      a = 'amd64';
      if (v === 'v1') v = '';
      break;
    case 'aarch64':
    case 'arm64':
      a = 'arm64';
      if (v === '8' || v === 'v8' || v === 'v8.0') v = '';
      else if (v === '9' || v === '9.0' || v === 'v9.0') v = 'v9';
      break;
    case 'armhf':
      a = 'arm';
      v = 'v7';
      break;
    case 'armel':
      a = 'arm';
      v = 'v6';
      break;
    case 'arm':
      if (v === '' || v === '7') v = 'v7';
      else if (v === '5' || v === '6' || v === '8') v = `v${v}`;
      break;
    default:
      break;
  }
  return { architecture: a, variant: v };
}

/** Normalised copy (containerd's rules): the form we compare and print. */
export function normalizePlatform(p: { os: string; architecture: string; variant?: string | undefined }): Platform {
  return { os: normalizeOs(p.os), ...normalizeArch(p.architecture, p.variant ?? '') };
}

/** `linux/arm64`, `linux/arm/v7`. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** Splits `os/arch[/variant]` as written, without normalising. */
function splitPlatform(text: string): { os: string; arch: string; variant?: string } {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => x === '' || /\s/.test(x))) {
    throw new Error(`invalid platform '${text}': expected os/arch or os/arch/variant`);
  }
  return { os: parts[0]!, arch: parts[1]!, ...(parts[2] !== undefined ? { variant: parts[2] } : {}) };
}

/** Parses `os/arch[/variant]` (e.g. from `--platform`). */
export function parsePlatform(text: string): Platform {
  const p = splitPlatform(text);
  return normalizePlatform({ os: p.os, architecture: p.arch, variant: p.variant ?? '' });
}

/**
 * Merges `--platform os/arch[/variant]` with `--os`/`--arch`/`--variant` (skopeo's and podman's
 * two spellings) into what was asked for. A field given both ways must agree (after
 * normalisation, so `--platform linux/arm64 --arch aarch64` is fine).
 */
export function platformOptions(o: { platform?: string | undefined; os?: string | undefined; arch?: string | undefined; variant?: string | undefined }): PlatformWanted {
  const separate: PlatformWanted = { ...(o.os ? { os: o.os } : {}), ...(o.arch ? { arch: o.arch } : {}), ...(o.variant ? { variant: o.variant } : {}) };
  if (!o.platform) return separate;
  const p = splitPlatform(o.platform);
  const variant = p.variant ?? o.variant;
  const merged: PlatformWanted = { os: p.os, arch: p.arch, ...(variant !== undefined ? { variant } : {}) };
  const want = wantedPlatform(merged);
  const conflict = (flag: string, value: string) => new Error(`--platform ${o.platform} conflicts with ${flag} ${value}`);
  if (o.os && normalizePlatform({ os: o.os, architecture: want.architecture }).os !== want.os) throw conflict('--os', o.os);
  if (o.arch) {
    const a = wantedPlatform({ arch: o.arch });
    if (a.architecture !== want.architecture || (o.arch.includes('/') && a.variant !== want.variant)) throw conflict('--arch', o.arch);
  }
  if (o.variant && p.variant !== undefined && wantedPlatform({ arch: p.arch, variant: o.variant }).variant !== want.variant) throw conflict('--variant', o.variant);
  return merged;
}

/** The architecture Go (and so docker/skopeo) would report for this Node process. */
export function hostArchitecture(): string {
  switch (process.arch) {
    case 'x64':
      return 'amd64';
    case 'ia32':
      return '386';
    case 'ppc64':
      return endianness() === 'LE' ? 'ppc64le' : 'ppc64';
    case 'mipsel':
      return 'mipsle';
    default:
      return process.arch;
  }
}

/**
 * Completes and normalises a wanted platform: os defaults to linux (images for the host OS
 * would be wrong on macOS runners building for Linux), architecture to the host's.
 */
export function wantedPlatform(w: PlatformWanted = {}): Platform {
  let arch = w.architecture ?? w.arch;
  let variant = w.variant;
  if (arch !== undefined && arch.includes('/')) {
    const [a, v, ...more] = arch.split('/');
    if (!a || !v || more.length > 0) throw new Error(`invalid architecture '${arch}': expected arch or arch/variant`);
    if (variant !== undefined && variant !== v) throw new Error(`architecture '${arch}' conflicts with variant '${variant}'`);
    arch = a;
    variant = v;
  }
  for (const [k, v] of [['os', w.os], ['architecture', arch], ['variant', variant]] as const) {
    if (v !== undefined && !/^[A-Za-z0-9._-]*$/.test(v)) throw new Error(`invalid platform ${k} '${v}'`);
  }
  return normalizePlatform({ os: w.os ?? 'linux', architecture: arch ?? hostArchitecture(), variant: variant ?? '' });
}

/**
 * Variants of an architecture from most to least capable (containers/image's compatibility
 * table; its arm64 "v8" entry is the same as no variant once normalised).
 */
const COMPATIBLE_VARIANTS: Readonly<Record<string, readonly string[]>> = {
  arm: ['v8', 'v7', 'v6', 'v5'],
};

/**
 * Candidates in order of preference, as containers/image WantedPlatforms: the exact variant
 * first, then the older compatible ones, then no variant at all.
 */
export function platformCandidates(want: Platform): Platform[] {
  const order = COMPATIBLE_VARIANTS[want.architecture] ?? [];
  const i = want.variant === '' ? -1 : order.indexOf(want.variant);
  const variants = i === -1 ? [want.variant] : order.slice(i);
  if (!variants.includes('')) variants.push('');
  return variants.map((variant) => ({ os: want.os, architecture: want.architecture, variant }));
}

/** A descriptor as it appears in an index, reduced to what selection needs. */
export interface IndexEntry {
  mediaType: string;
  digest: string;
  platform?: { os?: string; architecture?: string; variant?: string } | undefined;
  annotations?: Record<string, string> | undefined;
}

/** BuildKit marks provenance/SBOM attestations this way; they are not runnable images. */
export function isAttestation(e: IndexEntry): boolean {
  if (e.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') return true;
  return e.platform?.os === 'unknown' && e.platform?.architecture === 'unknown';
}

function entryPlatform(e: IndexEntry): Platform | undefined {
  const p = e.platform;
  if (!p || !p.os || !p.architecture) return undefined;
  return normalizePlatform({ os: p.os, architecture: p.architecture, variant: p.variant ?? '' });
}

function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && a.variant === b.variant;
}

/**
 * Picks the index entry for `want` among entries of the given media types: for each candidate
 * (most specific first), the first matching entry in index order wins. Returns undefined when
 * none matches; `availablePlatforms` lists what there was, for the error.
 */
export function selectPlatform<T extends IndexEntry>(
  entries: readonly T[], want: Platform, usable: (e: T) => boolean, opts: { exactVariant?: boolean } = {},
): T | undefined {
  const eligible = entries.filter((e) => usable(e) && !isAttestation(e));
  // A variant the user named is taken literally: no older compatible one stands in for it.
  const candidates = opts.exactVariant ? [want] : platformCandidates(want);
  for (const candidate of candidates) {
    for (const e of eligible) {
      const p = entryPlatform(e);
      if (p && samePlatform(p, candidate)) return e;
    }
  }
  return undefined;
}

/**
 * Whether an image with platform `have` is what was asked for: os and architecture (defaults
 * filled in), and the variant when the caller named one.
 */
export function platformSatisfies(have: Platform, want: PlatformWanted): boolean {
  const w = wantedPlatform(want);
  if (have.os !== w.os || have.architecture !== w.architecture) return false;
  return !variantNamed(want) || have.variant === w.variant;
}

/** Whether the caller named any part of the platform (else the host's is only a preference). */
export function platformNamed(want: PlatformWanted): boolean {
  return want.os !== undefined || want.arch !== undefined || want.architecture !== undefined || want.variant !== undefined;
}

/** Whether the caller named a variant (`--variant`, or `arch/variant`). */
export function variantNamed(want: PlatformWanted): boolean {
  return want.variant !== undefined || (want.arch ?? want.architecture ?? '').includes('/');
}

/** Distinct platforms of the runnable entries, in index order, for error messages. */
export function availablePlatforms(entries: readonly IndexEntry[]): string[] {
  const out: string[] = [];
  for (const e of entries) {
    if (isAttestation(e)) continue;
    const p = entryPlatform(e);
    const s = p ? formatPlatform(p) : '(no platform)';
    if (!out.includes(s)) out.push(s);
  }
  return out;
}
