import { showName } from '../nar/index.js';

/** Quotes an archive name for a message; names are bytes and need not be UTF-8. */
export function shown(name: Uint8Array | string): string {
  return typeof name === 'string' ? name : showName(name);
}

/** An archive member that would be unsafe to extract; nothing of the unpack is kept. */
export class RefusedEntryError extends Error {
  /** The member's name as shown in the message. */
  readonly entry: string;

  constructor(name: Uint8Array | string, reason: string) {
    super(`refusing archive entry '${shown(name)}': ${reason}`);
    this.name = 'RefusedEntryError';
    this.entry = shown(name);
  }
}

/** A file that is no archive we can read (or a compression we do not decode). */
export class UnsupportedArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedArchiveError';
  }
}

/** An archive whose bytes are damaged or truncated. */
export class CorruptArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptArchiveError';
  }
}

/** The archive's top level does not have the single entry that stripping needs. */
export class TopLevelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TopLevelError';
  }
}

/** The errno code of a Node system error, if it is one. */
export function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}
