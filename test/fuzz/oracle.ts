/**
 * What a parser may do with hostile input: succeed, or throw one of our own errors whose message
 * is one printable line. Anything else (a TypeError or RangeError from a missing check, a raw
 * Node system error, a multi-line or terminal-escape-carrying message) is a finding.
 */
const ENGINE_ERRORS: readonly (new (...a: never[]) => Error)[] = [TypeError, RangeError, SyntaxError, globalThis.ReferenceError, EvalError, URIError];

/** Longest message we accept: errors echo input, but only a clipped piece of it. */
export const MAX_MESSAGE = 2000;

export class FuzzFinding extends Error {}

/** Why `err` is not an acceptable rejection of bad input, or undefined when it is. */
export function unacceptableError(err: unknown): string | undefined {
  if (!(err instanceof Error)) return `threw a non-Error: ${String(err)}`;
  if (err instanceof FuzzFinding) return err.message;
  for (const E of ENGINE_ERRORS) if (err.constructor === E) return `engine ${err.name}: ${err.message}\n${err.stack ?? ''}`;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^(E[A-Z]+|ERR_[A-Z_]+)$/.test(code)) return `raw system error ${code}: ${err.message}`;
  const m = err.message;
  if (m === '') return `${err.name} with an empty message`;
  if (/[\u0000-\u001f\u007f-\u009f]/.test(m)) return `message carries a control character: ${JSON.stringify(m.slice(0, 300))}`;
  if (m.length > MAX_MESSAGE) return `message of ${m.length} characters: ${JSON.stringify(m.slice(0, 200))}…`;
  return undefined;
}

/** Runs `f`, turning an unacceptable error into a FuzzFinding and an acceptable one into its message. */
export async function rejectsCleanly<T>(f: () => Promise<T> | T): Promise<{ ok: true; value: T } | { ok: false; message: string }> {
  try {
    return { ok: true, value: await f() };
  } catch (err) {
    const why = unacceptableError(err);
    if (why !== undefined) throw new FuzzFinding(why);
    return { ok: false, message: (err as Error).message };
  }
}

/** Fails the case unless `cond` holds. */
export function expect(cond: boolean, what: string): void {
  if (!cond) throw new FuzzFinding(what);
}
