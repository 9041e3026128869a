import type { Hash } from '../hash/index.js';
import type { Json } from './recipe.js';

/** A fixed output whose content is not what the recipe declared; worded exactly as Nix words it. */
export class HashMismatchError extends Error {
  /** What the builder reported about what it fetched (e.g. the digest a tag resolved to), for explaining the mismatch. */
  buildInfo?: { [key: string]: Json };

  constructor(readonly recipePath: string, readonly specified: Hash, readonly got: Hash, readonly keptAt?: string) {
    super(
      `hash mismatch in fixed-output derivation '${recipePath}':\n` +
        `  specified: ${specified.sri}\n` +
        `     got:    ${got.sri}` +
        (keptAt ? `\nthe failed output was kept at '${keptAt}'` : ''),
    );
  }
}

export class BuildFailedError extends Error {
  constructor(readonly recipePath: string, cause: Error, readonly keptAt?: string) {
    super(`${cause.message}` + (keptAt ? `\nthe failed build directory was kept at '${keptAt}'` : ''), { cause });
  }
}

/**
 * A valid fixed-output path whose content, hashed for a pin, is not what the pin (and the path's
 * name) says: it was imported without a verified content address. It answers no pin until repaired.
 */
export class InvalidStoredPathError extends HashMismatchError {
  constructor(readonly storePath: string, recipePath: string, specified: Hash, got: Hash) {
    super(recipePath, specified, got);
    this.message =
      `store path '${storePath}' is invalid: its content does not match the pinned hash\n` +
      `  specified: ${specified.sri}\n` +
      `     got:    ${got.sri}\n` +
      `it was imported without a verified content address (a bundle or an unsigned cache?); ` +
      `repair it with 'fetch-image store verify --check-contents --repair'`;
  }
}
