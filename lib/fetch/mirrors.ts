/**
 * Hashed mirrors (nixpkgs' NIX_HASHED_MIRRORS): content-addressed copies at
 * `<mirror>/<algo>/<base16 hash>`, tried before the origin. A mirror is only a hint: a 404,
 * an error or bytes with the wrong hash just move on to the next source.
 */
import type { Hash } from '../hash/index.js';
import { downloadToFileWith, type DownloadResult } from './download.js';
import { redactUrl } from './errors.js';
import { parseTarget } from './http.js';
import type { FetchOptions } from './options.js';

/** The mirror list from NIX_HASHED_MIRRORS (space-separated). */
export function mirrorsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.NIX_HASHED_MIRRORS ?? '').split(/\s+/).filter((m) => m !== '');
}

/** `<mirror>/<algo>/<base16>` for each mirror. */
export function hashedMirrorUrls(hash: Hash, mirrors: readonly string[]): string[] {
  return mirrors.map((m) => `${m.replace(/\/+$/, '')}/${hash.algo}/${hash.base16}`);
}

export interface MirrorOptions extends FetchOptions {
  /** Mirrors to try (default: NIX_HASHED_MIRRORS from `env`). Pass [] to go straight to the origin. */
  mirrors?: readonly string[];
  /** Told about each source that was skipped, and why (for logs; URLs are redacted). */
  onSkip?: (url: string, reason: string) => void;
}

export interface MirrorDownloadResult extends DownloadResult {
  source: 'mirror' | 'origin';
  /** The URL the bytes came from (before redirects; redacted). */
  sourceUrl: string;
  /** Whether `hash` equals the expected hash. Always true for a mirror; check it for the origin. */
  matches: boolean;
  /** Sources tried before, with the reason each was passed over. */
  skipped: Array<{ url: string; reason: string }>;
}

/**
 * Downloads the file whose flat hash is `expected` into `destPath`: first from each hashed
 * mirror (verifying the hash, falling through on any failure or mismatch), then from the
 * origin URL(s) in order. The origin's bytes are returned whatever their hash (`matches`
 * tells), so that the caller reports a mismatch the way Nix does. Sensitive headers
 * (Authorization, Cookie, -u) are sent to the first origin URL's origin only, never to mirrors.
 * Mirror attempts are not retried: the next source is the fallback.
 */
export async function downloadWithMirrors(
  urls: string | readonly string[],
  destPath: string,
  expected: Hash,
  opts: MirrorOptions = {},
): Promise<MirrorDownloadResult> {
  const origins = typeof urls === 'string' ? [urls] : [...urls];
  if (origins.length === 0) throw new Error('downloadWithMirrors: no URL given');
  const trustedOrigin = parseTarget(origins[0]!, 'download of').url.origin;
  const { mirrors: given, onSkip, ...fetchOpts } = opts;
  const mirrors = given ?? mirrorsFromEnv(opts.env ?? process.env);
  const { skipped, skip } = skipRecorder(onSkip);

  const fromMirror = await tryMirrors(mirrors, destPath, expected, fetchOpts, trustedOrigin, skip, opts.signal);
  if (fromMirror) return { ...fromMirror, skipped };

  let lastError: unknown;
  for (const url of origins) {
    try {
      const r = await downloadToFileWith(url, destPath, expected.algo, fetchOpts, { trustedOrigin });
      return { ...r, source: 'origin', sourceUrl: redactUrl(url), matches: r.hash.equals(expected), skipped };
    } catch (err) {
      lastError = err;
      if (opts.signal?.aborted) break;
      if (url !== origins[origins.length - 1]) skip(url, err instanceof Error ? err.message : String(err));
    }
  }
  throw lastError;
}

/** Collects the sources passed over (redacted), telling `onSkip` as it goes. */
function skipRecorder(onSkip: MirrorOptions['onSkip']) {
  const skipped: Array<{ url: string; reason: string }> = [];
  const skip = (url: string, reason: string): void => {
    const shown = redactUrl(url);
    skipped.push({ url: shown, reason });
    onSkip?.(shown, reason);
  };
  return { skipped, skip };
}

async function tryMirrors(
  mirrors: readonly string[], destPath: string, expected: Hash, fetchOpts: FetchOptions, trustedOrigin: string,
  skip: (url: string, reason: string) => void, signal: AbortSignal | undefined,
): Promise<Omit<MirrorDownloadResult, 'skipped'> | undefined> {
  for (const url of hashedMirrorUrls(expected, mirrors)) {
    try {
      const r = await downloadToFileWith(url, destPath, expected.algo, { ...fetchOpts, retries: 0 }, { trustedOrigin });
      if (r.hash.equals(expected)) return { ...r, source: 'mirror', sourceUrl: redactUrl(url), matches: true };
      skip(url, `hash mismatch: got ${r.hash.sri}`);
    } catch (err) {
      if (signal?.aborted) throw err;
      skip(url, err instanceof Error ? err.message : String(err));
    }
  }
  return undefined;
}

/**
 * Only the hashed mirrors, never the origin: what a substituter does before a builder runs.
 * Credentials from curl flags stay with `originUrl`'s origin and never reach a mirror.
 * Resolves to undefined when no mirror had the exact content.
 */
export async function downloadFromHashedMirrors(
  originUrl: string, destPath: string, expected: Hash, opts: MirrorOptions = {},
): Promise<MirrorDownloadResult | undefined> {
  const trustedOrigin = parseTarget(originUrl, 'download of').url.origin;
  const { mirrors: given, onSkip, ...fetchOpts } = opts;
  const mirrors = given ?? mirrorsFromEnv(opts.env ?? process.env);
  const { skipped, skip } = skipRecorder(onSkip);
  const r = await tryMirrors(mirrors, destPath, expected, fetchOpts, trustedOrigin, skip, opts.signal);
  return r ? { ...r, skipped } : undefined;
}
