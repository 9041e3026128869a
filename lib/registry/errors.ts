/** The registry client's one-line errors, and how registry error bodies are read. */
import type { Readable } from 'node:stream';
import { redactText } from '../fetch/index.js';
import { printable } from '../text/index.js';

export type RegistryErrorCode =
  | 'UNAUTHORIZED'    // 401 after authenticating, or no credentials where they are required
  | 'DENIED'          // 403
  | 'NOT_FOUND'       // 404 / MANIFEST_UNKNOWN / BLOB_UNKNOWN / NAME_UNKNOWN
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'TOO_LARGE'
  | 'UNSUPPORTED'     // schema 1, unknown media types
  | 'BAD_MANIFEST'
  | 'NO_PLATFORM'
  | 'NOT_A_REGISTRY'
  | 'HTTP'            // any other unexpected status
  | 'TOKEN';          // the token server failed

export class RegistryError extends Error {
  readonly code: RegistryErrorCode;
  readonly status: number | undefined;

  constructor(message: string, code: RegistryErrorCode, init: { status?: number; cause?: unknown } = {}) {
    // One line, and never a credential even if a server echoed one back.
    super(redactText(message).replace(/\s*[\r\n]+\s*/g, ' '), init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'RegistryError';
    this.code = code;
    this.status = init.status;
  }
}

/** Reads at most `limit` bytes of a body we only want for an error message, then drops the rest. */
export async function readSmall(body: Readable, limit = 8192): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body as AsyncIterable<Buffer>) {
      chunks.push(c);
      n += c.length;
      if (n >= limit) break;
    }
  } catch {
    // An error while reading an error body adds nothing useful.
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, limit);
}

/**
 * The message a registry put in its error body: `{"errors":[{"code","message"}]}` per the
 * distribution spec, else the first line of plain text. Short, one line.
 */
export function describeErrorBody(body: Buffer): { text: string; codes: string[] } {
  const raw = body.toString('utf8');
  try {
    const doc = JSON.parse(raw) as unknown;
    if (typeof doc === 'object' && doc !== null && Array.isArray((doc as { errors?: unknown }).errors)) {
      const errs = (doc as { errors: unknown[] }).errors;
      const codes: string[] = [];
      const parts: string[] = [];
      for (const e of errs.slice(0, 3)) {
        if (typeof e !== 'object' || e === null) continue;
        const { code, message } = e as { code?: unknown; message?: unknown };
        if (typeof code === 'string') codes.push(code);
        parts.push([typeof code === 'string' ? code : '', typeof message === 'string' ? message : ''].filter(Boolean).join(': '));
      }
      return { text: clip(parts.filter(Boolean).join('; ')), codes };
    }
  } catch {
    // Not JSON: fall through to plain text.
  }
  const line = raw.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== '') ?? '';
  return { text: clip(/^\s*</.test(line) ? '' : line), codes: [] };
}

function clip(s: string, max = 200): string {
  return printable(s.replace(/\s+/g, ' ').trim(), max);
}
