import { createRequire } from 'node:module';

/**
 * A CommonJS module (the native compressors, the bzip2 decoder) loaded on the first call of the
 * returned function, not when lib/mirror is imported: every command that imports it, sync
 * included, would otherwise pay their dlopen and set-up (~5 ms each).
 */
export function onFirstUse<T>(name: string): () => T {
  let mod: T | undefined;
  return () => (mod ??= createRequire(import.meta.url)(name) as T);
}
