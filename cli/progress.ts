import { createRequire } from 'node:module';
import type cliProgressModule from 'cli-progress';
import type { SingleBar } from 'cli-progress';
import type { ProgressSink } from '../lib/recipe/index.js';
import { SILENT_PROGRESS } from '../lib/recipe/index.js';
import { count } from './plural.js';

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
  /** Started and not yet finished. */
  active: boolean;
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
        const rest = ` ${bar} ${bytes(params.value)}${total}  ${bytes(rate)}/s  ETA ${duration(eta)}`;
        // The whole line fits the terminal: the final frame is drawn with line wrapping back on,
        // which cli-progress emulates by cutting at the width (the numbers would be lost).
        const labelWidth = Math.max(8, Math.min(40, (process.stderr.columns || 80) - 1 - rest.length));
        return `${payload.label.slice(0, labelWidth).padEnd(labelWidth)}${rest}`;
      },
    },
    cliProgress.Presets.shades_classic,
  );
  const tracks = new Map<string, Track>();
  let open = 0;
  let totalBar: SingleBar | undefined;
  const started = Date.now();
  // With several items (layers), a last line sums them all; it stays the last line.
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
    totalBar.update(done, { label: `total (${count(tracks.size, 'item')})`, started });
  };
  return {
    start(id, label, total) {
      const t0 = Date.now();
      const again = tracks.get(id);
      if (again) {
        // The same item started over (e.g. a layer spooled after a failed in-place write): its own line, not a second one.
        if (!again.active) open++;
        Object.assign(again, { started: t0, label, done: 0, total: total ?? 0, active: true });
        again.bar.setTotal(total ?? 0);
        again.bar.update(0, { label, started: t0 });
      } else {
        tracks.set(id, { bar: multi.create(total ?? 0, 0, { label, started: t0 }), started: t0, label, done: 0, total: total ?? 0, active: true });
        open++;
        // Bars are drawn in creation order: the total line is made again below the new item.
        if (totalBar) {
          multi.remove(totalBar);
          totalBar = undefined;
        }
      }
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
      if (!t?.active) return;
      t.active = false;
      // An item of unknown size is complete at what arrived; its last value is kept for the final frame,
      // which MultiBar.stop() draws for every bar (stopping a bar here would freeze it one update early).
      if (t.total === 0) {
        t.total = t.done;
        t.bar.setTotal(t.done);
      }
      t.bar.update(t.done, { label: t.label, started: t.started });
      refreshTotal();
      if (--open === 0) multi.stop();
    },
  };
}
