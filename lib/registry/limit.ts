/** A `--jobs N` limiter: at most N of the wrapped tasks run at once, the rest wait in order. */
export type Limiter = <T>(task: () => Promise<T>) => Promise<T>;

export function limitConcurrency(jobs: number): Limiter {
  if (!Number.isSafeInteger(jobs) || jobs < 1) throw new Error(`invalid number of jobs ${jobs}: expected a positive integer`);
  let running = 0;
  const waiting: Array<() => void> = [];
  const next = (): void => {
    if (running < jobs) waiting.shift()?.();
  };
  return <T>(task: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      waiting.push(() => {
        running++;
        // A task that throws synchronously still frees its slot.
        Promise.resolve()
          .then(task)
          .then(resolve, reject)
          .finally(() => {
            running--;
            next();
          });
      });
      next();
    });
}
