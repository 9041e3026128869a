/**
 * A promise computed once and shared by every caller, unless it fails: a failed attempt is
 * forgotten so the next call tries again (a registry ping that hit a blip).
 */
export function onceUnlessFailed<T>(make: () => Promise<T>): () => Promise<T> {
  let current: Promise<T> | undefined;
  return () => {
    if (!current) {
      const p = make();
      current = p;
      p.catch(() => {
        if (current === p) current = undefined;
      });
    }
    return current;
  };
}
