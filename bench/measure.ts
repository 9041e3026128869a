import { spawn } from 'node:child_process';

export interface Sample {
  seconds: number;
  maxRssKiB: number;
}

/**
 * Runs a shell command under GNU time and returns wall seconds and the peak RSS of the whole
 * process tree's largest member. Output goes to /dev/null unless the command redirects itself.
 */
export function measure(command: string, env: NodeJS.ProcessEnv = process.env): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%M', 'sh', '-c', command], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`benchmark command failed (${code}): ${command}\n${err}`));
      const lines = err.trim().split('\n');
      resolve({ seconds, maxRssKiB: Number(lines[lines.length - 1]) });
    });
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Comparison {
  name: string;
  ours: number;
  peer: number;
  ratio: number;
  oursRssMiB: number;
  peerRssMiB: number;
  target?: string;
}

/** Alternates ours and the peer `runs` times (after one warm-up each) and compares medians. */
export async function compare(
  name: string, ours: string, peer: string, opts: { runs?: number; target?: string; setup?: () => Promise<void> } = {},
): Promise<Comparison> {
  const runs = opts.runs ?? 5;
  const o: Sample[] = [];
  const p: Sample[] = [];
  await opts.setup?.();
  await measure(ours);
  await opts.setup?.();
  await measure(peer);
  for (let i = 0; i < runs; i++) {
    await opts.setup?.();
    o.push(await measure(ours));
    await opts.setup?.();
    p.push(await measure(peer));
  }
  const om = median(o.map((s) => s.seconds));
  const pm = median(p.map((s) => s.seconds));
  const row: Comparison = {
    name, ours: om, peer: pm, ratio: om / pm,
    oursRssMiB: Math.max(...o.map((s) => s.maxRssKiB)) / 1024,
    peerRssMiB: Math.max(...p.map((s) => s.maxRssKiB)) / 1024,
  };
  if (opts.target) row.target = opts.target;
  return row;
}

export function printTable(rows: Comparison[]): void {
  const head = ['benchmark', 'ours (s)', 'peer (s)', 'ratio', 'target', 'our peak RSS', 'peer peak RSS'];
  const body = rows.map((r) => [r.name, r.ours.toFixed(3), r.peer.toFixed(3), `${r.ratio.toFixed(2)}×`, r.target ?? '', `${r.oursRssMiB.toFixed(0)} MiB`, `${r.peerRssMiB.toFixed(0)} MiB`]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  console.log(line(head));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const b of body) console.log(line(b));
}
