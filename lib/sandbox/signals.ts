/**
 * SIGINT/SIGTERM while a stage runs: every running stage is stopped and torn down (its
 * processes killed, its work dir removed) before the process goes. When nothing else listens
 * for the signal, it is raised again afterwards so the process ends as it would have without
 * us; when the application has its own handler, that handler decides.
 */
type Stop = () => Promise<void>;

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
const running = new Set<Stop>();
const handlers = new Map<NodeJS.Signals, () => void>();

function install(): void {
  for (const sig of SIGNALS) {
    const handler = (): void => {
      const alone = process.listenerCount(sig) === 1;
      void Promise.allSettled([...running].map((stop) => stop())).then(() => {
        if (!alone) return;
        uninstall();
        process.kill(process.pid, sig);
      });
    };
    handlers.set(sig, handler);
    process.on(sig, handler);
  }
}

function uninstall(): void {
  for (const [sig, handler] of handlers) process.off(sig, handler);
  handlers.clear();
}

/** Registers a running stage; call the returned function once it is torn down. */
export function stopOnSignal(stop: Stop): () => void {
  if (running.size === 0) install();
  running.add(stop);
  return () => {
    running.delete(stop);
    if (running.size === 0) uninstall();
  };
}
