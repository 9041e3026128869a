import { createRequire } from 'node:module';
import type cliProgressModule from 'cli-progress';
import type { SingleBar } from 'cli-progress';
import type { ProgressSink } from '../lib/recipe/index.js';
import { SILENT_PROGRESS } from '../lib/recipe/index.js';

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function duration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '--:--';
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, '0')}:${String(Math.round(s % 60)).padStart(2, '0')}`;
}

interface Track {
  bar: SingleBar;
  started: number;
  label: string;
  done: number;
  total: number;
}

/**
 * Progress bars on stderr: one per item (bytes, rate, ETA) plus a total line when there are
 * several. Only on a terminal and without --quiet; otherwise nothing is drawn.
 */
export function terminalProgress(opts: { quiet?: boolean }): ProgressSink {
  if (opts.quiet || !process.stderr.isTTY) return SILENT_PROGRESS;
  // Loaded only for a terminal: piped and scripted runs never draw, so never pay for it.
  const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof cliProgressModule;
  const multi = new cliProgress.MultiBar(
    {
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
      barsize: 24,
      format: (options, params, payload: { label: string; started: number }) => {
        const size = options.barsize ?? 24;
        const filled = params.total > 0 ? Math.round(params.progress * size) : 0;
        const bar = '█'.repeat(filled) + '░'.repeat(size - filled);
        const elapsed = (Date.now() - payload.started) / 1000;
        const rate = elapsed > 0 ? params.value / elapsed : 0;
        const eta = rate > 0 && params.total > 0 ? (params.total - params.value) / rate : NaN;
        const total = params.total > 0 ? ` / ${bytes(params.total)}` : '';
        return `${payload.label.slice(0, 40).padEnd(40)} ${bar} ${bytes(params.value)}${total}  ${bytes(rate)}/s  ETA ${duration(eta)}`;
      },
    },
    cliProgress.Presets.shades_classic,
  );
  const tracks = new Map<string, Track>();
  let open = 0;
  let totalBar: SingleBar | undefined;
  const started = Date.now();
  // With several items (layers), a last line sums them all.
  const refreshTotal = () => {
    if (tracks.size < 2) return;
    let done = 0;
    let total = 0;
    for (const t of tracks.values()) {
      done += t.done;
      total += t.total;
    }
    totalBar ??= multi.create(total, 0, { label: 'total', started });
    totalBar.setTotal(total);
    totalBar.update(done, { label: `total (${tracks.size} items)`, started });
  };
  return {
    start(id, label, total) {
      const t0 = Date.now();
      tracks.set(id, { bar: multi.create(total ?? 0, 0, { label, started: t0 }), started: t0, label, done: 0, total: total ?? 0 });
      open++;
      refreshTotal();
    },
    update(id, done, total) {
      const t = tracks.get(id);
      if (!t) return;
      if (total !== undefined) {
        t.bar.setTotal(total);
        t.total = total;
      }
      t.done = done;
      t.bar.update(done, { label: t.label, started: t.started });
      refreshTotal();
    },
    finish(id) {
      const t = tracks.get(id);
      if (!t) return;
      t.bar.stop();
      refreshTotal();
      if (--open === 0) multi.stop();
    },
  };
}
